// trit-inspect: what a .trit file holds and what it weighs.
//
//   build/bin/trit-inspect runs/ptq/model.trit
//
// Prints the model the file rebuilds, its metadata, then one row per tensor: name, shape,
// encoding, sparsity (share of exact zeros), bits per weight and bytes (its whole record:
// name, shape, codebooks, payload). Then the totals:
//   file bytes         the size of the file on disk, everything included
//   FP32 bytes         every tensor of the state_dict at 4 bytes per element
//   compression ratio  FP32 bytes / file bytes
//   paper-style        bits x weights (2 bits per ternary weight, the code width for
//                      power-of-two, 32 for FP32 tensors), no codebooks, names or header:
//                      the way papers often count, on a separate line
// and a last line with the totals as one JSON object.
//
// Errors (missing, truncated or corrupt file) print "error: ..." on stderr and exit 1; a
// usage error exits 2.
#include <trit/cli.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <trit/trit.hpp>

using namespace trit;

namespace {

int run(const std::string& path) {
  const io::CompressedModel model = io::read_compressed(path);
  const io::SizeTable table = io::size_table(model);
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(path));

  // The model and the metadata.
  const models::ModelConfig& c = model.config;
  std::printf(
      "model: %s (num_classes %lld, in_channels %lld, input_size %lld, width %g, "
      "small_input %s, shortcut %s)\n",
      c.name.c_str(), static_cast<long long>(c.num_classes), static_cast<long long>(c.in_channels),
      static_cast<long long>(c.input_size), c.width,
      c.small_input ? (*c.small_input ? "on" : "off") : "auto",
      models::shortcut_name(c.shortcut).c_str());
  for (const auto& [key, value] : model.metadata)
    std::printf("metadata: %s = %s\n", key.c_str(), value.c_str());

  // The table, columns as wide as their longest entry.
  int name_width = 4, shape_width = 5;
  for (const auto& row : table.rows) {
    name_width = std::max(name_width, static_cast<int>(row.name.size()));
    shape_width = std::max(shape_width, static_cast<int>(to_string(row.shape).size()));
  }
  std::printf("\n%-*s  %-*s  %-15s  %8s  %7s  %10s\n", name_width, "name", shape_width, "shape",
              "encoding", "sparsity", "bits/w", "bytes");
  for (const auto& row : table.rows) {
    std::printf("%-*s  %-*s  %-15s  %7.2f%%  %7.3f  %10lld\n", name_width, row.name.c_str(),
                shape_width, to_string(row.shape).c_str(), io::tensor_encoding_name(row.encoding),
                100.0 * row.sparsity, row.bits_per_weight(), static_cast<long long>(row.bytes));
  }
  std::printf("%-*s  %10lld\n", name_width + shape_width + 45,
              "header (magic, version, model, metadata, checksum)",
              static_cast<long long>(table.header_bytes));

  // The totals.
  const double ratio = file_bytes > 0 ? double(table.fp32_bytes) / double(file_bytes) : 0.0;
  const double sparsity = table.quantized_weights > 0
                              ? double(table.zero_weights) / double(table.quantized_weights)
                              : 0.0;
  std::printf("\nfile bytes:        %lld (on disk, everything included)\n",
              static_cast<long long>(file_bytes));
  std::printf("FP32 bytes:        %lld (all %zu tensors of the state_dict at 4 bytes)\n",
              static_cast<long long>(table.fp32_bytes), table.rows.size());
  std::printf("compression ratio: %.2fx\n", ratio);
  std::printf("quantized weights: %lld of %lld elements, sparsity %.2f%%\n",
              static_cast<long long>(table.quantized_weights),
              static_cast<long long>(table.fp32_bytes / 4), 100.0 * sparsity);
  std::printf(
      "paper-style count: %lld bytes (bits x weights, no codebooks or header), ratio %.2fx\n",
      static_cast<long long>(table.nominal_bytes), table.nominal_ratio());
  std::printf(
      "{\"file_bytes\": %lld, \"fp32_bytes\": %lld, \"compression_ratio\": %.4f, "
      "\"nominal_bytes\": %lld, \"nominal_ratio\": %.4f, \"quantized_weights\": %lld, "
      "\"sparsity\": %.6f}\n",
      static_cast<long long>(file_bytes), static_cast<long long>(table.fp32_bytes), ratio,
      static_cast<long long>(table.nominal_bytes), table.nominal_ratio(),
      static_cast<long long>(table.quantized_weights), sparsity);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  CLI::App app{"trit-inspect: per-tensor sizes and totals of a .trit file"};
  app.add_option("file", path, "the .trit file")->required();
  return run_program(app, argc, argv, [&] { return run(path); });
}
