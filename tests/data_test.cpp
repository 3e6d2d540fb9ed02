// The data layer: every file format written byte-exact into a temp folder and read back,
// corrupted variants rejected with trit::Error naming the file, transforms on known images,
// and the DataLoader's order, coverage, determinism (seed, threads, prefetch).
#include <doctest/doctest.h>

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <omp.h>
#include <unistd.h>

#include <trit/data.hpp>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

namespace fs = std::filesystem;
namespace data = trit::data;
using Bytes = std::vector<uint8_t>;
using trit::Tensor;

namespace {

// A fresh empty folder under the system temp dir, removed at the end of the test case.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path = fs::temp_directory_path() / ("trit_data_test_" + std::to_string(::getpid()) + "_" + tag);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_plain(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

void put_be32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(uint8_t(v >> s));
}

// IDX bytes: magic 0x0000 08 <ndims>, big-endian dims, then `values`.
Bytes idx(const std::vector<uint32_t>& dims, const Bytes& values, uint32_t magic = 0) {
  Bytes b;
  put_be32(b, magic ? magic : 0x0800u | uint32_t(dims.size()));
  for (uint32_t d : dims) put_be32(b, d);
  b.insert(b.end(), values.begin(), values.end());
  return b;
}

// n images of 2x3 with pixel value (i * 6 + k) * 3 and labels i % 10.
Bytes pixels_for(int n) {
  Bytes p;
  for (int i = 0; i < n * 6; ++i) p.push_back(uint8_t(i * 3));
  return p;
}
Bytes labels_for(int n) {
  Bytes l;
  for (int i = 0; i < n; ++i) l.push_back(uint8_t(i % 10));
  return l;
}

// Runs `f`, which must throw trit::Error whose message contains `needle` (a file name).
template <class F>
void check_error_names(F f, const std::string& needle) {
  try {
    f();
    FAIL("no trit::Error thrown; expected one naming ", needle);
  } catch (const trit::Error& e) {
    INFO("what(): ", e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
  }
}

// A dataset of n images 1x4x4 whose every pixel of image i is i, label i % 3.
data::Dataset counting_set(int64_t n) {
  data::Dataset set;
  set.images = Tensor<float>::empty({n, 1, 4, 4});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < 16; ++k) set.images.data()[i * 16 + k] = float(i);
  for (int64_t i = 0; i < n; ++i) set.labels.push_back(i % 3);
  set.classes = {"a", "b", "c"};
  return set;
}

std::vector<float> flatten(std::vector<data::Batch>& batches) {
  std::vector<float> all;
  for (auto& b : batches) {
    auto v = b.images.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

std::vector<data::Batch> one_epoch(data::DataLoader& loader) {
  std::vector<data::Batch> out;
  for (data::Batch& b : loader) out.push_back(b);
  return out;
}

}  // namespace

// ---- IDX ------------------------------------------------------------------------------

TEST_CASE("IDX images and labels read back from gzip and plain files") {
  TempDir dir("idx");
  const int n = 5;
  for (bool gz : {true, false}) {
    CAPTURE(gz);
    std::string ip = dir / (gz ? "i.gz" : "i"), lp = dir / (gz ? "l.gz" : "l");
    (gz ? write_gz : write_plain)(ip, idx({n, 2, 3}, pixels_for(n)));
    (gz ? write_gz : write_plain)(lp, idx({n}, labels_for(n)));
    data::Dataset set = data::load_idx(ip, lp, {});
    REQUIRE(set.size() == n);
    CHECK(set.images.shape() == trit::Shape{n, 1, 2, 3});
    CHECK(set.num_classes() == 10);
    for (int i = 0; i < n * 6; ++i) CHECK(set.images.data()[i] == doctest::Approx((i * 3 % 256) / 255.0));
    for (int i = 0; i < n; ++i) CHECK(set.labels[size_t(i)] == i % 10);
    CHECK(set.images(4, 0, 1, 2) == doctest::Approx(29 * 3 / 255.0));
  }
}

TEST_CASE("load_mnist / load_fashion_mnist find train and t10k files, .gz or plain") {
  TempDir dir("mnist");
  write_gz(dir / "train-images-idx3-ubyte.gz", idx({4, 2, 3}, pixels_for(4)));
  write_gz(dir / "train-labels-idx1-ubyte.gz", idx({4}, labels_for(4)));
  write_plain(dir / "t10k-images-idx3-ubyte", idx({2, 2, 3}, pixels_for(2)));
  write_plain(dir / "t10k-labels-idx1-ubyte", idx({2}, labels_for(2)));
  auto train = data::load_fashion_mnist(dir.path.string(), true);
  auto test = data::load_mnist(dir.path.string(), false);
  CHECK(train.size() == 4);
  CHECK(test.size() == 2);
  CHECK(train.classes[9] == "Ankle boot");
  CHECK(test.classes[3] == "3");
  fs::remove(dir / "t10k-labels-idx1-ubyte");
  check_error_names([&] { data::load_mnist(dir.path.string(), false); }, "t10k-labels-idx1-ubyte");
}

TEST_CASE("corrupt IDX files raise trit::Error naming the file") {
  TempDir dir("idxbad");
  const int n = 4;
  std::string good_images = dir / "good-images", good_labels = dir / "good-labels";
  write_plain(good_images, idx({n, 2, 3}, pixels_for(n)));
  write_plain(good_labels, idx({n}, labels_for(n)));
  REQUIRE_NOTHROW(data::load_idx(good_images, good_labels));

  auto bad_images = [&](const std::string& name, const Bytes& bytes, bool gz = false) {
    std::string path = dir / name;
    (gz ? write_gz : write_plain)(path, bytes);
    check_error_names([&] { data::load_idx(path, good_labels); }, name);
  };
  auto bad_labels = [&](const std::string& name, const Bytes& bytes) {
    std::string path = dir / name;
    write_plain(path, bytes);
    check_error_names([&] { data::load_idx(good_images, path); }, name);
  };
  SUBCASE("bad magic") { bad_images("magic", idx({n, 2, 3}, pixels_for(n), 0x00000903)); }
  SUBCASE("labels magic for images") { bad_images("swapped", idx({n}, labels_for(n))); }
  SUBCASE("truncated pixels") {
    Bytes b = idx({n, 2, 3}, pixels_for(n));
    b.pop_back();
    bad_images("short", b);
  }
  SUBCASE("trailing bytes") {
    Bytes b = idx({n, 2, 3}, pixels_for(n));
    b.push_back(0);
    bad_images("long", b);
  }
  SUBCASE("truncated header") { bad_images("header", Bytes{0, 0, 8, 3, 0, 0}); }
  SUBCASE("empty file") { bad_images("empty", Bytes{}); }
  SUBCASE("zero dimension") { bad_images("zero", idx({0, 2, 3}, {})); }
  SUBCASE("huge dims, no huge allocation") {
    bad_images("huge", idx({0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, pixels_for(n)));
  }
  SUBCASE("truncated gzip stream") {
    std::string full = dir / "full.gz";
    write_gz(full, idx({n, 2, 3}, pixels_for(n)));
    std::ifstream in(full, std::ios::binary);
    Bytes gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    gz.resize(gz.size() - 12);  // cut into the deflate data and lose the trailer
    bad_images("cut.gz", gz);
  }
  SUBCASE("label out of range") { bad_labels("labels-range", idx({n}, Bytes{0, 1, 10, 2})); }
  SUBCASE("count mismatch") { bad_labels("labels-count", idx({n + 1}, labels_for(n + 1))); }
  SUBCASE("missing file") {
    check_error_names([&] { data::load_idx(dir / "nope-images", good_labels); }, "nope-images");
  }
  SUBCASE("a folder instead of a file") {
    fs::create_directories(dir / "folder");
    check_error_names([&] { data::load_idx(dir / "folder", good_labels); }, "folder");
  }
}

TEST_CASE("the real Fashion-MNIST test set, when installed") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) {
    MESSAGE("skipped: ", dir, " not found (sudo apt-get install dataset-fashion-mnist)");
    return;
  }
  data::Dataset test = data::load_fashion_mnist(dir, false);
  CHECK(test.size() == 10000);
  CHECK(test.images.shape() == trit::Shape{10000, 1, 28, 28});
  std::vector<int> histogram(10, 0);
  for (int64_t l : test.labels) histogram[size_t(l)]++;
  for (int count : histogram) CHECK(count == 1000);
  CHECK(test.images.array().minCoeff() == 0.0f);
  CHECK(test.images.array().maxCoeff() == 1.0f);
}

// ---- locating datasets ----------------------------------------------------------------

TEST_CASE("find_dataset_dir: explicit dir, then TRIT_DATA/<name>, TRIT_DATA, system root") {
  TempDir dir("locate");
  fs::create_directories(dir / "env/toy");
  fs::create_directories(dir / "system/toy");
  fs::create_directories(dir / "explicit");
  const std::string system = dir / "system";
  ::unsetenv("TRIT_DATA");
  CHECK(data::find_dataset_dir("toy", dir / "explicit", system) == dir / "explicit");
  check_error_names([&] { data::find_dataset_dir("toy", dir / "missing", system); }, "missing");
  CHECK(data::find_dataset_dir("toy", "", system) == dir / "system/toy");
  ::setenv("TRIT_DATA", (dir / "env").c_str(), 1);
  CHECK(data::find_dataset_dir("toy", "", system) == dir / "env/toy");
  CHECK(data::find_dataset_dir("other", "", system) == dir / "env");
  ::setenv("TRIT_DATA", (dir / "nowhere").c_str(), 1);
  CHECK(data::find_dataset_dir("toy", "", system) == dir / "system/toy");
  ::unsetenv("TRIT_DATA");
  check_error_names([&] { data::find_dataset_dir("fashion-mnist", "", dir / "void"); },
                    "sudo apt-get install dataset-fashion-mnist");
}

// ---- CIFAR ----------------------------------------------------------------------------

namespace {
// n CIFAR records; record r has label bytes `labels(r)` and pixel k = (r * 7 + k) % 256.
Bytes cifar_records(int n, int label_bytes, int first_label) {
  Bytes b;
  for (int r = 0; r < n; ++r) {
    if (label_bytes == 2) b.push_back(uint8_t(r % 20));  // coarse
    b.push_back(uint8_t((first_label + r) % (label_bytes == 2 ? 100 : 10)));
    for (int k = 0; k < 3072; ++k) b.push_back(uint8_t((r * 7 + k) % 256));
  }
  return b;
}
}  // namespace

TEST_CASE("CIFAR-10 batches read back with labels and R, G, B planes") {
  TempDir dir("cifar10");
  for (int i = 1; i <= 5; ++i)
    write_plain(dir / ("data_batch_" + std::to_string(i) + ".bin"), cifar_records(2, 1, i));
  write_gz(dir / "test_batch.bin", cifar_records(3, 1, 7));  // gzip'd content, plain name
  data::Dataset train = data::load_cifar10(dir.path.string(), true);
  data::Dataset test = data::load_cifar10(dir.path.string(), false);
  REQUIRE(train.size() == 10);
  REQUIRE(test.size() == 3);
  CHECK(train.images.shape() == trit::Shape{10, 3, 32, 32});
  CHECK(train.classes[0] == "airplane");
  CHECK(train.labels == std::vector<int64_t>{1, 2, 2, 3, 3, 4, 4, 5, 5, 6});
  CHECK(test.labels == std::vector<int64_t>{7, 8, 9});
  // record 1 of test: pixel (c, y, x) = (7 + c * 1024 + y * 32 + x) % 256
  CHECK(test.images(1, 0, 0, 0) == doctest::Approx(7 / 255.0));
  CHECK(test.images(1, 1, 0, 0) == doctest::Approx((7 + 1024) % 256 / 255.0));
  CHECK(test.images(1, 2, 3, 5) == doctest::Approx((7 + 2048 + 96 + 5) % 256 / 255.0));

  SUBCASE("missing batch") {
    fs::remove(dir / "data_batch_4.bin");
    check_error_names([&] { data::load_cifar10(dir.path.string(), true); }, "data_batch_4.bin");
  }
  SUBCASE("truncated file") {
    Bytes b = cifar_records(3, 1, 0);
    b.resize(b.size() - 100);
    write_plain(dir / "test_batch.bin", b);
    check_error_names([&] { data::load_cifar10(dir.path.string(), false); }, "test_batch.bin");
  }
  SUBCASE("label out of range") {
    Bytes b = cifar_records(2, 1, 0);
    b[3073] = 10;
    write_plain(dir / "test_batch.bin", b);
    check_error_names([&] { data::load_cifar10(dir.path.string(), false); }, "test_batch.bin");
  }
  SUBCASE("empty file") {
    write_plain(dir / "test_batch.bin", {});
    check_error_names([&] { data::load_cifar10(dir.path.string(), false); }, "test_batch.bin");
  }
}

TEST_CASE("CIFAR-100 uses the fine label and fine_label_names.txt") {
  TempDir dir("cifar100");
  write_plain(dir / "train.bin", cifar_records(4, 2, 97));
  data::Dataset train = data::load_cifar100(dir.path.string(), true);
  CHECK(train.labels == std::vector<int64_t>{97, 98, 99, 0});
  CHECK(train.classes.size() == 100);
  CHECK(train.classes[42] == "42");
  CHECK(train.images(3, 0, 0, 1) == doctest::Approx((21 + 1) / 255.0));
  {
    std::ofstream names(dir / "fine_label_names.txt");
    for (int i = 0; i < 100; ++i) names << "class" << i << "\n";
  }
  CHECK(data::load_cifar100(dir.path.string(), true).classes[99] == "class99");
  SUBCASE("fine label out of range") {
    Bytes b = cifar_records(2, 2, 0);
    b[1] = 100;
    write_plain(dir / "train.bin", b);
    check_error_names([&] { data::load_cifar100(dir.path.string(), true); }, "train.bin");
  }
  SUBCASE("a CIFAR-10 file is not a whole number of CIFAR-100 records") {
    write_plain(dir / "test.bin", cifar_records(3, 1, 0));
    check_error_names([&] { data::load_cifar100(dir.path.string(), false); }, "test.bin");
  }
  SUBCASE("wrong number of class names") {
    std::ofstream(dir / "fine_label_names.txt") << "only\none\n";
    check_error_names([&] { data::load_cifar100(dir.path.string(), true); }, "fine_label_names.txt");
  }
}

// ---- image folders --------------------------------------------------------------------

namespace {
void write_png(const std::string& path, int w, int h, int c, const Bytes& pixels) {
  REQUIRE(stbi_write_png(path.c_str(), w, h, c, pixels.data(), w * c) != 0);
}
}  // namespace

TEST_CASE("image folders: sorted classes and files, RGB and grey, bilinear resize") {
  TempDir dir("folder");
  fs::create_directories(dir / "zebra");
  fs::create_directories(dir / "ant");
  fs::create_directories(dir / ".hidden");
  // ant/b.png: 2x2 RGB; pixel (y, x) = (10 * (2y + x) + channel)
  Bytes rgb;
  for (int p = 0; p < 4; ++p)
    for (int ch = 0; ch < 3; ++ch) rgb.push_back(uint8_t(10 * p + ch));
  write_png(dir / "ant/b.png", 2, 2, 3, rgb);
  write_png(dir / "ant/a.PNG", 2, 2, 3, Bytes(12, 255));
  std::ofstream(dir / "ant/notes.txt") << "not an image";
  // zebra/x.png: 4x4 grey, pixel = 16 * (4y + x)
  Bytes grey;
  for (int p = 0; p < 16; ++p) grey.push_back(uint8_t(16 * p));
  write_png(dir / "zebra/x.png", 4, 4, 1, grey);

  data::Dataset set = data::load_image_folder(dir.path.string(), data::ImageFolderOptions().set_size(2, 2));
  CHECK(set.classes == std::vector<std::string>{"ant", "zebra"});
  CHECK(set.labels == std::vector<int64_t>{0, 0, 1});
  CHECK(set.images.shape() == trit::Shape{3, 3, 2, 2});
  CHECK(set.images(0, 1, 1, 1) == doctest::Approx(1.0));  // a.PNG sorts before b.png
  for (int ch = 0; ch < 3; ++ch)
    for (int p = 0; p < 4; ++p) CHECK(set.images(1, ch, p / 2, p % 2) == doctest::Approx((10 * p + ch) / 255.0));
  // 4x4 -> 2x2 bilinear with centres aligned: the mean of each 2x2 block; grey -> equal RGB.
  for (int ch = 0; ch < 3; ++ch) {
    CHECK(set.images(2, ch, 0, 0) == doctest::Approx(16 * (0 + 1 + 4 + 5) / 4.0 / 255.0));
    CHECK(set.images(2, ch, 1, 1) == doctest::Approx(16 * (10 + 11 + 14 + 15) / 4.0 / 255.0));
  }
  data::Dataset grey_set = data::load_image_folder(dir.path.string(), data::ImageFolderOptions().set_channels(1).set_size(4, 4));
  CHECK(grey_set.images.shape() == trit::Shape{3, 1, 4, 4});
  CHECK(grey_set.images(2, 0, 3, 2) == doctest::Approx(16 * 14 / 255.0));
  // 2x2 -> 4x4 upsampling: edges clamp, the inner pixels interpolate at 1/4 and 3/4.
  CHECK(grey_set.images(0, 0, 1, 1) == doctest::Approx(1.0));

  SUBCASE("a non-image file named .png") {
    std::ofstream(dir / "zebra/y.png") << "this is not a png";
    check_error_names([&] { data::load_image_folder(dir.path.string()); }, "y.png");
  }
  SUBCASE("an empty class folder") {
    fs::create_directories(dir / "empty_class");
    check_error_names([&] { data::load_image_folder(dir.path.string()); }, "empty_class");
  }
  SUBCASE("a root without class folders") {
    fs::create_directories(dir / "bare");
    check_error_names([&] { data::load_image_folder(dir / "bare"); }, "bare");
  }
  SUBCASE("a missing root") {
    check_error_names([&] { data::load_image_folder(dir / "gone"); }, "gone");
  }
  SUBCASE("bad options") {
    CHECK_THROWS_AS(data::load_image_folder(dir.path.string(), data::ImageFolderOptions().set_channels(2)), trit::Error);
  }
}

TEST_CASE("resize_bilinear upsamples with clamped edges") {
  const uint8_t in[2] = {0, 255};  // 1x2 grey
  float out[4];
  data::resize_bilinear(in, 1, 2, 1, out, 1, 4);
  // centres at source x = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
  CHECK(out[0] == doctest::Approx(0.0));
  CHECK(out[1] == doctest::Approx(0.25));
  CHECK(out[2] == doctest::Approx(0.75));
  CHECK(out[3] == doctest::Approx(1.0));
}

// ---- transforms -----------------------------------------------------------------------

namespace {
// A 2 x 3 x 3 image with value c * 100 + y * 10 + x.
Tensor<float> known_image() {
  Tensor<float> t = Tensor<float>::empty({2, 3, 3});
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) t(c, y, x) = float(c * 100 + y * 10 + x);
  return t;
}
}  // namespace

TEST_CASE("RandomHorizontalFlip mirrors rows; p = 0 and p = 1 are deterministic") {
  trit::Generator gen(1);
  Tensor<float> img = known_image();
  data::apply(data::RandomHorizontalFlip(1.0), img, gen);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) CHECK(img(c, y, x) == float(c * 100 + y * 10 + (2 - x)));
  Tensor<float> same = known_image();
  data::apply(data::RandomHorizontalFlip(0.0), same, gen);
  CHECK(same.to_vector() == known_image().to_vector());
  CHECK_THROWS_AS(data::RandomHorizontalFlip(1.5), trit::Error);
}

TEST_CASE("RandomCrop with padding shifts the image and fills zeros") {
  for (int dy = -2; dy <= 2; ++dy)
    for (int dx = -2; dx <= 2; ++dx) {
      CAPTURE(dy);
      CAPTURE(dx);
      Tensor<float> img = known_image();
      data::RandomCrop::shift(data::ImageView{img.data(), 2, 3, 3}, dy, dx);
      for (int c = 0; c < 2; ++c)
        for (int y = 0; y < 3; ++y)
          for (int x = 0; x < 3; ++x) {
            int sy = y + dy, sx = x + dx;
            float want = (sy >= 0 && sy < 3 && sx >= 0 && sx < 3) ? float(c * 100 + sy * 10 + sx) : 0.0f;
            CHECK(img(c, y, x) == want);
          }
    }
  // The random version draws dy then dx from [-padding, padding]: replay the draws.
  trit::Generator gen(7), replay(7);
  Tensor<float> img = known_image(), want = known_image();
  data::apply(data::RandomCrop(3, 1), img, gen);
  int64_t dy = replay.below(3) - 1, dx = replay.below(3) - 1;
  data::RandomCrop::shift(data::ImageView{want.data(), 2, 3, 3}, dy, dx);
  CHECK(img.to_vector() == want.to_vector());
  Tensor<float> wrong = known_image();
  CHECK_THROWS_AS(data::apply(data::RandomCrop(4, 1), wrong, gen), trit::Error);
  // Over many draws every offset in [-1, 1]^2 appears, and no other.
  std::set<std::pair<int64_t, int64_t>> seen;
  trit::Generator g(3);
  for (int i = 0; i < 200; ++i) {
    Tensor<float> one = Tensor<float>::zeros({1, 3, 3});
    one(0, 1, 1) = 1.0f;
    data::apply(data::RandomCrop(3, 1), one, g);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x)
        if (one(0, y, x) == 1.0f) seen.insert({1 - y, 1 - x});
  }
  CHECK(seen.size() == 9);
}

TEST_CASE("Normalize per channel and broadcast; Compose applies in order") {
  trit::Generator gen(0);
  Tensor<float> img = known_image();
  data::apply(data::Normalize({1.0f, 100.0f}, {2.0f, 4.0f}), img, gen);
  CHECK(img(0, 1, 2) == doctest::Approx((12 - 1) / 2.0));
  CHECK(img(1, 2, 0) == doctest::Approx((120 - 100) / 4.0));
  Tensor<float> both = known_image();
  data::apply(data::Compose{data::Normalize({10.0f}, {10.0f}), data::RandomHorizontalFlip(1.0)}, both, gen);
  CHECK(both(1, 0, 0) == doctest::Approx((102 - 10) / 10.0));
  CHECK_THROWS_AS(data::Normalize({0.5f}, {0.0f}), trit::Error);
  CHECK_THROWS_AS(data::Normalize({0.5f, 0.5f}, {1.0f}), trit::Error);
  Tensor<float> three = Tensor<float>::zeros({3, 2, 2});
  CHECK_THROWS_AS(data::apply(data::Normalize({0.f, 0.f}, {1.f, 1.f}), three, gen), trit::Error);
}

// ---- Dataset and DataLoader -----------------------------------------------------------

TEST_CASE("Dataset take and slice share pixels and check ranges") {
  data::Dataset set = counting_set(10);
  data::Dataset first = set.take(4);
  CHECK(first.size() == 4);
  CHECK(first.images.shape() == trit::Shape{4, 1, 4, 4});
  CHECK(set.take(100).size() == 10);
  data::Dataset mid = set.slice(3, 6);
  CHECK(mid.images(0, 0, 0, 0) == 3.0f);
  CHECK(mid.labels == std::vector<int64_t>{0, 1, 2});
  CHECK_THROWS_AS(set.slice(5, 11), trit::Error);
  CHECK_THROWS_AS(set.take(-1), trit::Error);
  data::Dataset bad = counting_set(3);
  bad.labels[1] = 3;
  CHECK_THROWS_AS(bad.validate("bad"), trit::Error);
  CHECK_THROWS_AS(data::DataLoader(bad, {}), trit::Error);
}

TEST_CASE("DataLoader: batch count, coverage, labels and images match their indices") {
  data::Dataset set = counting_set(10);
  data::DataLoader keep(set, data::LoaderOptions().set_batch_size(4));
  data::DataLoader drop(set, data::LoaderOptions().set_batch_size(4).set_drop_last(true));
  CHECK(keep.size() == 3);
  CHECK(drop.size() == 2);
  CHECK(one_epoch(drop).size() == 2);
  CHECK(data::DataLoader(set, data::LoaderOptions().set_batch_size(5)).size() == 2);
  CHECK_THROWS_AS(data::DataLoader(set, data::LoaderOptions().set_batch_size(0)), trit::Error);

  for (int epoch = 0; epoch < 3; ++epoch) {
    auto batches = one_epoch(keep);
    REQUIRE(batches.size() == 3);
    CHECK(batches[2].size() == 2);
    std::vector<int> seen(10, 0);
    for (auto& b : batches)
      for (int64_t j = 0; j < b.size(); ++j) {
        int64_t i = b.indices[size_t(j)];
        seen[size_t(i)]++;
        CHECK(b.labels[size_t(j)] == i % 3);
        CHECK(b.images(j, 0, 2, 3) == float(i));
      }
    CHECK(seen == std::vector<int>(10, 1));
  }
  CHECK(keep.epoch() == 3);
  data::DataLoader ordered(set, data::LoaderOptions().set_batch_size(4).set_shuffle(false));
  CHECK(ordered.order(5) == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("DataLoader: seeded order, new order per epoch, resumable") {
  data::Dataset set = counting_set(50);
  auto options = data::LoaderOptions().set_batch_size(8).set_seed(11);
  data::DataLoader a(set, options), b(set, options);
  CHECK(a.order(0) == b.order(0));
  CHECK(a.order(0) != a.order(1));
  CHECK(a.order(0) != data::DataLoader(set, data::LoaderOptions().set_seed(12)).order(0));
  auto a0 = one_epoch(a), a1 = one_epoch(a);
  auto b0 = one_epoch(b);
  CHECK(flatten(a0) == flatten(b0));
  CHECK(flatten(a0) != flatten(a1));
  data::DataLoader c(set, options);
  c.set_epoch(1);
  auto c1 = one_epoch(c);
  CHECK(flatten(c1) == flatten(a1));
}

TEST_CASE("DataLoader: identical batches at 1 and 2 threads, with and without prefetch") {
  data::Dataset set = counting_set(37);
  for (int64_t i = 0; i < set.images.numel(); ++i) set.images.data()[i] += float(i % 16) * 0.01f;
  data::Transform augment = data::Compose{data::RandomCrop(4, 2), data::RandomHorizontalFlip(),
                                          data::Normalize({0.5f}, {0.25f})};
  auto run = [&](int threads, bool prefetch) {
    omp_set_num_threads(threads);
    data::DataLoader loader(set, data::LoaderOptions().set_batch_size(6).set_seed(5)
                                     .set_transform(augment).set_prefetch(prefetch));
    auto e0 = one_epoch(loader), e1 = one_epoch(loader);
    auto all = flatten(e0), more = flatten(e1);
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  auto reference = run(1, false);
  CHECK(reference == run(2, false));
  CHECK(reference == run(1, true));
  CHECK(reference == run(2, true));
  omp_set_num_threads(2);
  // The transform did change the images.
  data::DataLoader plain(set, data::LoaderOptions().set_batch_size(6).set_seed(5).set_prefetch(false));
  auto p0 = one_epoch(plain);
  CHECK(flatten(p0) != std::vector<float>(reference.begin(), reference.begin() + 37 * 16));
}

TEST_CASE("DataLoader: a failing transform surfaces as trit::Error, also from prefetch") {
  data::Dataset set = counting_set(20);
  for (bool prefetch : {false, true}) {
    data::DataLoader loader(set, data::LoaderOptions().set_batch_size(4).set_prefetch(prefetch)
                                     .set_transform(data::RandomCrop(8, 1)));
    CHECK_THROWS_AS(one_epoch(loader), trit::Error);
  }
}
