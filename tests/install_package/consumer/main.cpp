// A program outside the trit tree: it only finds the installed package.
#include <trit/trit.hpp>
#include <cstdio>

int main() {
  auto x = trit::Tensor<float>::full({2, 3}, 1.5f);
  if (x.numel() != 6 || x[5] != 1.5f) return 1;
  std::printf("trit %s found, tensor of %lld elements\n", TRIT_VERSION_STRING,
              static_cast<long long>(x.numel()));
  return 0;
}
