#pragma once
// CsvLog: a training log as a CSV file, one row per epoch (or step), readable by any plotting
// tool. The header is written once; each row is flushed as soon as it is added, so the log
// survives a crash or Ctrl-C up to the last completed row.
//
//   CsvLog log("run/log.csv", {"epoch", "train_loss", "test_acc", "quantizer"});
//   log.row({epoch, loss, acc, "hq"});
//
// Cells are numbers (printed with up to 10 significant digits, so values round-trip to the
// precision a plot needs) or strings (quoted per RFC 4180 when they contain , " or newline).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "trit/core/error.hpp"

namespace trit::train {

class CsvLog {
 public:
  // One cell: any arithmetic value becomes a double; text stays text.
  struct Cell {
    std::variant<double, std::string> value;
    template <class N, std::enable_if_t<std::is_arithmetic_v<N>, int> = 0>
    Cell(N number) : value(static_cast<double>(number)) {}
    Cell(std::string text) : value(std::move(text)) {}
    Cell(const char* text) : value(std::string(text)) {}
  };

  enum class Mode {
    truncate,  // start a new file
    append,    // keep existing rows (for --resume); the header must match the columns
  };

  // Opens `path` and writes the header row (unless appending to a file that already has one).
  // Throws trit::Error naming `path` if it cannot be opened, or if an appended file's header
  // differs from `columns`.
  CsvLog(std::string path, std::vector<std::string> columns, Mode mode = Mode::truncate)
      : path_(std::move(path)), columns_(std::move(columns)) {
    check(!columns_.empty(), path_, "a CSV log needs at least one column");
    const std::string header = join(columns_);
    bool write_header = true;
    if (mode == Mode::append) {
      std::ifstream existing(path_);
      std::string first;
      if (existing && std::getline(existing, first) && !first.empty()) {
        check(first == header, path_, "cannot append: existing header '", first,
              "' differs from '", header, "'");
        write_header = false;
      }
    }
    out_.open(path_, mode == Mode::append ? std::ios::app : std::ios::trunc);
    check(out_.is_open(), path_, "cannot open CSV log for writing");
    if (write_header) write_line(header);
  }

  // Appends one row; it must have one cell per column.
  void row(const std::vector<Cell>& cells) {
    check(cells.size() == columns_.size(), path_, "row has ", cells.size(), " cells for ",
          columns_.size(), " columns");
    std::vector<std::string> texts;
    for (const Cell& c : cells) {
      if (const double* x = std::get_if<double>(&c.value)) texts.push_back(format_number(*x));
      else texts.push_back(std::get<std::string>(c.value));
    }
    write_line(join(texts));
  }

  const std::string& path() const { return path_; }
  const std::vector<std::string>& columns() const { return columns_; }

  // "0.41234", "60000", "1e-05", "nan": shortest of up to 10 significant digits.
  static std::string format_number(double x) {
    if (std::isnan(x)) return "nan";
    if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.10g", x);
    return buf;
  }

  // A field quoted when it holds a comma, quote or line break (quotes doubled).
  static std::string quote(const std::string& field) {
    if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
    std::string q = "\"";
    for (char c : field) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  }

 private:
  static std::string join(const std::vector<std::string>& fields) {
    std::string line;
    for (size_t i = 0; i < fields.size(); ++i) line += (i ? "," : "") + quote(fields[i]);
    return line;
  }
  void write_line(const std::string& line) {
    out_ << line << '\n';
    out_.flush();
    check(out_.good(), path_, "write error");
  }

  std::string path_;
  std::vector<std::string> columns_;
  std::ofstream out_;
};

}  // namespace trit::train
