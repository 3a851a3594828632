#include "fashion_mnist_data.hpp"

#include <zlib.h>

#include "zeroshard/error.hpp"

namespace zs::examples {

namespace {

std::vector<unsigned char> read_gzip(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file)
    throw InvalidArgument("cannot open " + path + ": no such readable file. Install Debian's dataset-fashion-mnist "
                          "(its files are in /usr/share/datasets/fashion-mnist, the default) or point --data-dir at "
                          "a folder holding the four idx .gz files");
  std::vector<unsigned char> bytes;
  unsigned char buffer[1 << 16];
  int got = 0;
  while ((got = gzread(file, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + got);
  int code = 0;
  const char* message = gzerror(file, &code);
  const std::string error = got < 0 ? std::string(message ? message : "read error") : "";
  gzclose(file);
  if (!error.empty()) throw InvalidArgument(path + ": " + error + " (truncated or not gzip?)");
  return bytes;
}

std::uint32_t big_endian(const std::vector<unsigned char>& b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) | (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}

}  // namespace

Dataset load_fashion_mnist(const std::string& dir, const std::string& prefix) {
  const std::string image_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string label_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  const auto images = read_gzip(image_path);
  const auto labels = read_gzip(label_path);
  if (images.size() < 16 || big_endian(images, 0) != 0x00000803)
    throw InvalidArgument(image_path + ": not an idx3 image file (bad magic number)");
  if (labels.size() < 8 || big_endian(labels, 0) != 0x00000801)
    throw InvalidArgument(label_path + ": not an idx1 label file (bad magic number)");
  Dataset d;
  d.count = big_endian(images, 4);
  d.features = static_cast<std::int64_t>(big_endian(images, 8)) * big_endian(images, 12);
  if (static_cast<std::int64_t>(images.size()) != 16 + d.count * d.features)
    throw InvalidArgument(image_path + ": " + std::to_string(images.size()) + " bytes, but the header promises " +
                          std::to_string(16 + d.count * d.features));
  if (big_endian(labels, 4) != d.count || static_cast<std::int64_t>(labels.size()) != 8 + d.count)
    throw InvalidArgument(label_path + ": label count does not match " + image_path);
  // Fashion-MNIST training-set statistics, the usual normalisation.
  constexpr float kMean = 0.2860f, kStd = 0.3530f;
  d.images.resize(d.count * d.features);
  for (std::int64_t i = 0; i < d.count * d.features; ++i) d.images[i] = (images[16 + i] / 255.0f - kMean) / kStd;
  d.labels.resize(d.count);
  for (std::int64_t i = 0; i < d.count; ++i) d.labels[i] = labels[8 + i];
  return d;
}

}  // namespace zs::examples
