// safetensors: files written the way PyTorch's safetensors writes them (every dtype trit
// reads, a Conv2d + BatchNorm2d state_dict with int64 num_batches_tracked), round trips,
// the exact header trit writes, every way a file can be malformed, and strict / non-strict
// loading into a module.
#include <doctest/doctest.h>

#include "error_of.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>
#include <trit/io.hpp>
#include <trit/nn.hpp>

#include "reference.hpp"

using trit::Tensor;
namespace io = trit::io;

using trit::testing::error_of;

namespace {

std::string interop(const std::string& file) {
  return std::string(TRIT_TEST_REFERENCE_DIR) + "/interop/" + file;
}

// A fresh path in the temp directory, removed when the test ends.
struct TempPath {
  std::string path;
  explicit TempPath(const std::string& name)
      : path("/tmp/trit_safetensors_test_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempPath() { std::remove(path.c_str()); }
};

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file from a header text and a data buffer, the length field as given.
std::string file_bytes(const std::string& header, const std::string& buffer, uint64_t length) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  return bytes + header + buffer;
}
std::string file_bytes(const std::string& header, const std::string& buffer) {
  return file_bytes(header, buffer, header.size());
}

// The header JSON text of the safetensors file at `path`, padding included.
std::string header_text(const std::string& path) {
  std::vector<char> bytes = io::read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return std::string(bytes.data() + 8, n);
}

// Sequential(Conv2d(2, 3, 3), BatchNorm2d(3)): the model of tiny.safetensors.
std::shared_ptr<trit::nn::Sequential<float>> tiny_model() {
  return std::make_shared<trit::nn::Sequential<float>>(
      std::make_shared<trit::nn::Conv2d<float>>(2, 3, 3),
      std::make_shared<trit::nn::BatchNorm2d<float>>(3));
}

}  // namespace

TEST_CASE("every dtype PyTorch writes reads as float, with metadata and file order") {
  io::SafetensorsFile f = io::load_safetensors(interop("dtypes.safetensors"));
  CHECK(f.metadata.at("format") == "pt");
  CHECK(f.metadata.at("note") == "dtypes");
  REQUIRE(f.tensors.size() == 12);
  // Header order (this writer sorts by name; the data lies 8-byte dtypes first).
  CHECK(f.tensors[0].first == "bf16");
  CHECK(f.tensors[1].first == "bool");
  CHECK(f.tensors[11].first == "u8");
  auto get = [&](const char* name) {
    const Tensor<float>* t = f.find(name);
    REQUIRE_MESSAGE(t != nullptr, name);
    return t->to_vector();
  };
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(f.find("f64")->shape() == trit::Shape{2, 3});
  CHECK(get("f64") == std::vector<float>{1.0f, -2.5f, 0.0f, 3.25f, 0.0f, -0.0f});
  CHECK(std::signbit(get("f64")[5]));
  CHECK(get("f32") == std::vector<float>{1.5f, -3.0e38f, 1.0e-45f});
  CHECK(get("f16") == std::vector<float>{1.5f, -2.0f, std::ldexp(1.0f, -14),
                                         std::ldexp(1.0f, -24), 65504.0f, inf});
  CHECK(get("bf16") == std::vector<float>{1.0f, -0.0078125f, std::ldexp(1.0f, 127)});
  CHECK(get("i64") == std::vector<float>{0.0f, -7.0f, 123456789.0f});
  CHECK(f.find("i32")->shape() == trit::Shape{2, 1});
  CHECK(get("i32") == std::vector<float>{-1.0f, 2147483647.0f});
  CHECK(get("i16") == std::vector<float>{-32768.0f, 5.0f});
  CHECK(get("i8") == std::vector<float>{-128.0f, 127.0f});
  CHECK(get("u8") == std::vector<float>{0.0f, 255.0f});
  CHECK(get("bool") == std::vector<float>{1.0f, 0.0f, 1.0f});
  CHECK(f.find("scalar")->shape() == trit::Shape{});
  CHECK(f.find("scalar")->item() == 42.0f);
  CHECK(f.find("empty")->shape() == trit::Shape{0, 3});
  CHECK(f.find("missing") == nullptr);
}

TEST_CASE("half floats convert exactly, NaN included") {
  CHECK(io::detail::half_to_float(0x3c00) == 1.0f);
  CHECK(io::detail::half_to_float(0xc000) == -2.0f);
  CHECK(io::detail::half_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(io::detail::half_to_float(0x83ff) == -std::ldexp(1023.0f, -24));
  CHECK(io::detail::half_to_float(0x7bff) == 65504.0f);
  CHECK(io::detail::half_to_float(0xfc00) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(io::detail::half_to_float(0x7e00)));
  CHECK(std::signbit(io::detail::half_to_float(0x8000)));
}

TEST_CASE("a PyTorch Conv2d + BatchNorm2d state_dict loads strictly and computes the same") {
  auto ref = trit::testing::load_reference("interop.txt");
  auto model = tiny_model();
  io::LoadReport report = io::load_weights(*model, interop("tiny.safetensors"));
  CHECK(report.complete());
  CHECK(report.loaded == 7);
  CHECK(report.to_string() == "");
  for (auto& [name, t] : model->state_dict()) {
    CAPTURE(name);
    CHECK(trit::testing::max_abs_diff(t, trit::testing::get(ref, "tiny." + name)) == 0.0);
  }
  CHECK(model->state_dict()[6].first == "1.num_batches_tracked");
  CHECK(model->state_dict()[6].second.item() > 0.0f);
  model->eval();
  Tensor<float> y = (*model)(trit::testing::get(ref, "tiny.x").to<float>());
  CHECK(trit::testing::max_abs_diff(y, trit::testing::get(ref, "tiny.y")) < 1e-5);
}

TEST_CASE("save_weights writes the header PyTorch expects and loads back exactly") {
  auto model = tiny_model();
  io::load_weights(*model, interop("tiny.safetensors"));
  TempPath file("tiny.safetensors");
  io::save_weights(*model, file.path, {{"model", "tiny"}});

  // State_dict order, F32 except num_batches_tracked (I64, its data first so that it is
  // 8-byte aligned, as PyTorch's loader needs), padded to 8 bytes.
  const std::string header = header_text(file.path);
  CHECK(header.size() % 8 == 0);
  CHECK(header.rfind(R"({"__metadata__":{"model":"tiny"},"0.weight":{"dtype":"F32",)"
                     R"("shape":[3,2,3,3],"data_offsets":[8,224]},"0.bias":)", 0) == 0);
  CHECK(header.find(R"("1.num_batches_tracked":{"dtype":"I64","shape":[],)"
                    R"("data_offsets":[0,8]}})") != std::string::npos);
  CHECK(io::read_file(file.path).size() == 8 + header.size() + 284);

  auto copy = tiny_model();
  io::load_weights(*copy, file.path);
  auto a = model->state_dict(), b = copy->state_dict();
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i].second.to_vector() == b[i].second.to_vector());
  CHECK(io::load_safetensors(file.path).metadata == std::map<std::string, std::string>{{"model", "tiny"}});
}

TEST_CASE("save_safetensors round trip: order, shapes, values, metadata, scalars, empties") {
  trit::Generator gen(3);
  std::vector<std::pair<std::string, Tensor<float>>> tensors = {
      {"z.last_first", Tensor<float>::randn({4, 3, 2}, gen)},
      {"a.scalar", Tensor<float>::scalar(-0.0f)},
      {"empty", Tensor<float>::zeros({2, 0})},
      {"bn.num_batches_tracked", Tensor<float>::scalar(1234.0f)},
      {"odd", Tensor<float>::from_vector({3}, {1e-40f, std::numeric_limits<float>::infinity(),
                                               -3.5f})},
  };
  TempPath file("round_trip.safetensors");
  io::save_safetensors(file.path, tensors, {{"epoch", "3"}, {"model", "x y \"quoted\""}});
  io::SafetensorsFile f = io::load_safetensors(file.path);
  CHECK(f.metadata.at("epoch") == "3");
  CHECK(f.metadata.at("model") == "x y \"quoted\"");
  REQUIRE(f.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    CAPTURE(tensors[i].first);
    CHECK(f.tensors[i].first == tensors[i].first);
    CHECK(f.tensors[i].second.shape() == tensors[i].second.shape());
    CHECK(std::memcmp(f.tensors[i].second.data(), tensors[i].second.data(),
                      4 * tensors[i].second.numel()) == 0);
  }
  CHECK(header_text(file.path).find(R"("bn.num_batches_tracked":{"dtype":"I64")") !=
        std::string::npos);

  // No metadata: no "__metadata__" entry; no tensors at all is a valid file too.
  io::save_safetensors(file.path, {});
  CHECK(header_text(file.path) == "{}      ");
  CHECK(io::load_safetensors(file.path).tensors.empty());
}

TEST_CASE("saving rejects bad names and unwritable paths, naming the file") {
  TempPath file("bad_save.safetensors");
  auto t = Tensor<float>::ones({2});
  CHECK(error_of([&] { io::save_safetensors(file.path, {{"a", t}, {"a", t}}); })
            .find("duplicate tensor name 'a'") != std::string::npos);
  CHECK(error_of([&] { io::save_safetensors(file.path, {{"", t}}); }).find(file.path) == 0);
  CHECK(error_of([&] { io::save_safetensors(file.path, {{"__metadata__", t}}); })
            .find("invalid tensor name") != std::string::npos);
  CHECK(error_of([&] { io::save_safetensors("/nonexistent_dir/x.safetensors", {{"a", t}}); })
            .find("/nonexistent_dir/x.safetensors") == 0);
  CHECK(std::ifstream(file.path).good() == false);
}

TEST_CASE("malformed files raise trit::Error naming the file and the tensor") {
  TempPath file("bad.safetensors");
  const std::string good_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string buffer(8, '\x01');
  // Sanity: the good pieces make a good file.
  write_bytes(file.path, file_bytes("{" + good_entry + "}", buffer));
  CHECK(io::load_safetensors(file.path).tensors.size() == 1);

  auto error_for = [&](const std::string& bytes) {
    write_bytes(file.path, bytes);
    std::string message = error_of([&] { io::load_safetensors(file.path); });
    CHECK_MESSAGE(message.find(file.path) == 0, message);
    return message;
  };
  auto contains = [](const std::string& message, const std::string& part) {
    INFO(message);
    CHECK(message.find(part) != std::string::npos);
  };
  SUBCASE("too short for the length field") {
    contains(error_for("abc"), "too short");
  }
  SUBCASE("header length past the end of the file") {
    contains(error_for(file_bytes("{}", "", 1000)), "only 2 bytes follow");
  }
  SUBCASE("header length over the cap") {
    contains(error_for(file_bytes("{}", "", uint64_t(1) << 62)), "limit");
  }
  SUBCASE("header is not JSON") {
    contains(error_for(file_bytes("{\"w\": [1, 2", buffer)), "not valid JSON");
  }
  SUBCASE("header is not an object") {
    contains(error_for(file_bytes("[1, 2, 3]", "")), "not a JSON object");
  }
  SUBCASE("buffer truncated") {
    contains(error_for(file_bytes("{" + good_entry + "}", buffer.substr(0, 5))),
             "tensor 'w': data_offsets [0, 8] reach past the 5-byte data buffer");
  }
  SUBCASE("bytes after the last tensor") {
    contains(error_for(file_bytes("{" + good_entry + "}", buffer + "xyz")), "3 bytes belong to no tensor");
  }
  SUBCASE("overlapping offsets") {
    contains(error_for(file_bytes(
                 R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                 R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", buffer)),
             "tensors 'a' and 'b' overlap");
  }
  SUBCASE("the same name twice") {
    contains(error_for(file_bytes("{" + good_entry + "," + good_entry + "}", buffer)),
             "tensor 'w' appears twice in the header");
  }
  SUBCASE("gap between tensors") {
    contains(error_for(file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                  buffer)),
             "gap in the data buffer: bytes [0, 4) before tensor 'a'");
  }
  SUBCASE("byte count differs from numel x size") {
    contains(error_for(file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                                  buffer)),
             "tensor 'w': shape [3] of F32 needs 12 bytes, but data_offsets [0, 8] hold 8");
  }
  SUBCASE("shape whose numel overflows") {
    contains(error_for(file_bytes(
                 R"({"w":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})",
                 buffer)),
             "needs over 2^64 bytes");
  }
  SUBCASE("unknown dtype") {
    contains(error_for(file_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})",
                                  buffer)),
             "tensor 'w': unsupported dtype \"F8_E4M3\"");
  }
  SUBCASE("negative or fractional extent") {
    contains(error_for(file_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                                  buffer)),
             "tensor 'w': \"shape\" holds -2");
    contains(error_for(file_bytes(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})",
                                  buffer)),
             "\"shape\" holds 2.0");
  }
  SUBCASE("offsets backwards or not a pair") {
    contains(error_for(file_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})",
                                  buffer)),
             "run backwards");
    contains(error_for(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})",
                                  buffer)),
             "not [begin, end]");
  }
  SUBCASE("missing or unknown fields") {
    contains(error_for(file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", buffer)),
             "tensor 'w': header entry has no \"shape\"");
    contains(error_for(file_bytes(
                 R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", buffer)),
             "unknown header field \"x\"");
    contains(error_for(file_bytes(R"({"w":[1]})", buffer)), "tensor 'w': header entry is not an object");
  }
  SUBCASE("metadata that is not string to string") {
    contains(error_for(file_bytes(R"({"__metadata__":{"epoch":3}})", "")),
             "value of \"epoch\" is not a string");
    contains(error_for(file_bytes(R"({"__metadata__":[]})", "")), "\"__metadata__\" is not an object");
  }
  SUBCASE("missing file") {
    std::remove(file.path.c_str());
    CHECK(error_of([&] { io::load_safetensors(file.path); }).find(file.path) == 0);
  }
}

TEST_CASE("strict loading lists every missing, unexpected and mis-shaped tensor; nothing changes") {
  // A file from a model with 4 input channels and no BatchNorm: conv weight mis-shaped, the
  // BN tensors missing; plus a stray tensor.
  auto other = std::make_shared<trit::nn::Sequential<float>>(
      std::make_shared<trit::nn::Conv2d<float>>(4, 3, 3));
  auto tensors = other->state_dict();
  tensors.emplace_back("extra.weight", Tensor<float>::ones({5}));
  TempPath file("mismatch.safetensors");
  io::save_safetensors(file.path, tensors);

  auto model = tiny_model();
  const std::vector<float> bias_before = model->state_dict()[1].second.to_vector();
  std::string message = error_of([&] { io::load_weights(*model, file.path); });
  CHECK(message == file.path +
                       ": weights do not match the model; missing in file: 1.weight, 1.bias, "
                       "1.running_mean, 1.running_var, 1.num_batches_tracked; unexpected in "
                       "file: extra.weight; shape mismatch: 0.weight: file [3, 4, 3, 3] vs "
                       "model [3, 2, 3, 3]");
  // Strict failure leaves the model untouched, even the tensor that did match (0.bias).
  CHECK(model->state_dict()[1].second.to_vector() == bias_before);

  // Not strict: the matching tensor loads, the report lists the rest.
  io::LoadReport report = io::load_weights(*model, file.path, /*strict=*/false);
  CHECK_FALSE(report.complete());
  CHECK(report.loaded == 1);
  CHECK(report.missing.size() == 5);
  CHECK(report.unexpected == std::vector<std::string>{"extra.weight"});
  CHECK(report.mismatched ==
        std::vector<std::string>{"0.weight: file [3, 4, 3, 3] vs model [3, 2, 3, 3]"});
  CHECK(model->state_dict()[1].second.to_vector() == other->state_dict()[1].second.to_vector());
}
