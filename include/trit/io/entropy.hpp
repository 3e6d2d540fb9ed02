#pragma once
// Entropy coding of a stream of small symbols (the codes of a quantized tensor) with a static
// order-0 rANS coder (Duda's asymmetric numeral systems, in the byte-wise form of Giesen's
// ryg_rans): one 32-bit state, renormalised a byte at a time.
//
// Why not zstd (measured on 100k i.i.d. codes, size over the order-0 entropy n*H0/8):
//   codes                         this coder   zstd -19 on code bytes   zstd -19 on packed codes
//   ternary, 70% zeros            +0.07%       +16.3%                   +1.5%  (2-bit)
//   ternary, 90% zeros            +0.15%       +29.0%                   +6.2%  (2-bit)
//   ternary, 97% zeros            +0.37%       +51.4%                   +29.5% (2-bit)
//   power-of-two, 17 levels, 75% zeros  +0.18%  +20.4%                  +16.3% (5-bit)
// zstd misses the 3% target on sparse codes (its literal coder sees bytes, not codes), and
// this coder needs no library. Its excess is the header (1 + 2A bytes: 7 for ternary codes),
// the 4-byte state and the rounding of the frequencies to 15 bits.
//
// The idea. Each symbol s gets a frequency f[s], the frequencies summing to M = 2^15, and a
// start c[s] = f[0] + ... + f[s-1] (its slot range [c[s], c[s] + f[s]) in [0, M)). Coding s
// maps the state x to about x * M / f[s], i.e. adds log2(M / f[s]) bits, which is the
// symbol's information when f[s] / M is its probability; bytes leave the state whenever it
// would outgrow 32 bits. The decoder runs the map backwards, so the encoder codes the
// symbols last to first and the decoder returns them first to last.
//
// Stream layout (little-endian), self-describing except for the symbol count n, which the
// caller stores (a tensor's shape gives it):
//   u8  A - 1                    alphabet size A in [1, 256]: symbols are 0 .. A-1
//   A x u16 f[s]                 frequencies, summing to M = 32768 (0 for absent symbols)
//   u32 x                        the encoder's final state, in [L, 256 L), L = 2^23
//   bytes                        the renormalisation bytes, in the order the decoder reads them
//
// Decoding is defensive: it reads only inside the given range, every loop is bounded by n or
// by the bytes left, and anything inconsistent (frequencies not summing to M, a state out of
// range, running out of bytes, bytes left over, a final state that is not L) raises
// trit::Error naming `where`.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "trit/core/error.hpp"
#include "trit/io/bytes.hpp"

namespace trit::io {

inline constexpr int kRansProbBits = 15;  // frequencies sum to M = 2^15
inline constexpr uint32_t kRansM = 1u << kRansProbBits;
inline constexpr uint32_t kRansL = 1u << 23;  // state lives in [L, 256 L)

// n * H0 in bits: the order-0 (Shannon) entropy of the n symbols, the least any coder that
// codes each symbol by its frequency alone can reach.
inline double order0_entropy_bits(const uint8_t* symbols, size_t n) {
  double counts[256] = {};
  for (size_t i = 0; i < n; ++i) counts[symbols[i]] += 1;
  double bits = 0;
  for (int s = 0; s < 256; ++s)
    if (counts[s] > 0) bits -= counts[s] * std::log2(counts[s] / double(n));
  return bits;
}

namespace detail {

// Frequencies f[0..A) summing to kRansM from symbol counts: every present symbol gets at
// least 1, and the rounding error is spread where it costs the fewest bits.
inline std::vector<uint32_t> rans_frequencies(const std::vector<uint64_t>& counts, uint64_t n) {
  const size_t A = counts.size();
  std::vector<uint32_t> f(A, 0);
  int64_t sum = 0;
  for (size_t s = 0; s < A; ++s) {
    if (counts[s] == 0) continue;
    double scaled = double(counts[s]) * double(kRansM) / double(n);
    f[s] = static_cast<uint32_t>(std::max(1.0, std::round(scaled)));
    sum += f[s];
  }
  // Each step moves one unit of frequency; at most about 1.5 A steps are needed.
  // Too little: grow the symbol whose code gets cheapest by it.
  while (sum < int64_t(kRansM)) {
    size_t best = 0;
    double best_gain = -1;
    for (size_t s = 0; s < A; ++s) {
      if (counts[s] == 0) continue;
      double gain = double(counts[s]) * std::log2(double(f[s] + 1) / double(f[s]));
      if (gain > best_gain) best_gain = gain, best = s;
    }
    f[best] += 1;
    sum += 1;
  }
  // Too much: shrink the symbol (with f > 1) whose code gets dearest by the least.
  while (sum > int64_t(kRansM)) {
    size_t best = 0;
    double best_loss = INFINITY;
    for (size_t s = 0; s < A; ++s) {
      if (f[s] <= 1) continue;
      double loss = double(counts[s]) * std::log2(double(f[s]) / double(f[s] - 1));
      if (loss < best_loss) best_loss = loss, best = s;
    }
    f[best] -= 1;
    sum -= 1;
  }
  return f;
}

}  // namespace detail

// The rANS stream (layout above) of the n symbols at `symbols`.
inline std::string rans_encode(const uint8_t* symbols, size_t n) {
  // Alphabet and counts.
  size_t A = 1;
  for (size_t i = 0; i < n; ++i) A = std::max<size_t>(A, size_t(symbols[i]) + 1);
  std::vector<uint64_t> counts(A, 0);
  for (size_t i = 0; i < n; ++i) counts[symbols[i]] += 1;
  if (n == 0) counts[0] = 1;  // an empty stream: one symbol with all the frequency
  const std::vector<uint32_t> f = detail::rans_frequencies(counts, n == 0 ? 1 : n);
  std::vector<uint32_t> c(A, 0);
  for (size_t s = 1; s < A; ++s) c[s] = c[s - 1] + f[s - 1];

  // Code the symbols last to first; `emitted` collects the bytes in the order they leave.
  std::string emitted;
  uint32_t x = kRansL;
  for (size_t i = n; i-- > 0;) {
    const uint32_t fs = f[symbols[i]], cs = c[symbols[i]];
    // Renormalise: shift bytes out until coding s keeps x below 256 L.
    const uint32_t x_max = ((kRansL >> kRansProbBits) << 8) * fs;
    while (x >= x_max) {
      emitted.push_back(static_cast<char>(x & 0xff));
      x >>= 8;
    }
    // x -> (x / f) * M + c + (x mod f): about x * M / f.
    x = ((x / fs) << kRansProbBits) + (x % fs) + cs;
  }

  detail::ByteWriter w;
  w.scalar<uint8_t>(static_cast<uint8_t>(A - 1));
  for (size_t s = 0; s < A; ++s) w.scalar<uint16_t>(static_cast<uint16_t>(f[s]));
  w.scalar<uint32_t>(x);
  // The decoder needs the last emitted byte first.
  w.out.append(emitted.rbegin(), emitted.rend());
  return w.out;
}

inline std::string rans_encode(const std::vector<uint8_t>& symbols) {
  return rans_encode(symbols.data(), symbols.size());
}

// The n symbols coded in the `size` bytes at `data`, which must be exactly one stream written
// by rans_encode; anything else raises trit::Error(where, ...).
inline std::vector<uint8_t> rans_decode(const char* data, size_t size, size_t n,
                                        const std::string& where) {
  detail::ByteReader in(data, size, where);
  const size_t A = size_t(in.scalar<uint8_t>("rANS alphabet size")) + 1;
  std::vector<uint32_t> f(A), c(A);
  uint32_t sum = 0;
  for (size_t s = 0; s < A; ++s) {
    f[s] = in.scalar<uint16_t>("rANS frequencies");
    c[s] = sum;
    sum += f[s];  // at most 256 * 65535: no overflow
  }
  check(sum == kRansM, where, "corrupt entropy-coded data: frequencies sum to ", sum,
        " instead of ", kRansM);
  // slot -> symbol, for the M slots.
  std::vector<uint8_t> symbol_of(kRansM);
  for (size_t s = 0; s < A; ++s)
    for (uint32_t k = c[s]; k < c[s] + f[s]; ++k) symbol_of[k] = static_cast<uint8_t>(s);

  uint32_t x = in.scalar<uint32_t>("rANS state");
  check(x >= kRansL && x < (kRansL << 8), where, "corrupt entropy-coded data: state ", x,
        " out of range");
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(in.position());
  const size_t num_bytes = in.remaining();
  size_t next = 0;

  std::vector<uint8_t> out;
  out.reserve(std::min<size_t>(n, size_t(1) << 20));  // grows with what decodes, not with n
  for (size_t i = 0; i < n; ++i) {
    // The symbol whose slot range holds x mod M, then the inverse of the encoder's map.
    const uint32_t slot = x & (kRansM - 1);
    const uint8_t s = symbol_of[slot];
    x = f[s] * (x >> kRansProbBits) + slot - c[s];
    // Renormalise: x >= 2^8 here (f >= 1, x >> 15 >= 2^8), so at most two bytes come in.
    while (x < kRansL) {
      check(next < num_bytes, where,
            "corrupt or truncated entropy-coded data: ran out of bytes at symbol ", i, " of ", n);
      x = (x << 8) | bytes[next++];
    }
    out.push_back(s);
  }
  check(next == num_bytes, where, "corrupt entropy-coded data: ", num_bytes - next,
        " bytes left after ", n, " symbols");
  check(x == kRansL, where, "corrupt entropy-coded data: final state ", x, " is not ", kRansL);
  return out;
}

}  // namespace trit::io
