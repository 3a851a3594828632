// The checkpoint manifest (checkpoint/include/zeroshard/checkpoint/file_manifest.hpp): the
// strict parser refuses every malformed line naming it, the text round-trips, and digests of
// consecutive ranges combine into the whole file's (how a shared-file save digests its file
// without re-reading it). The reference CRC is zlib's crc32 over the whole buffer.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"

namespace zs::checkpoint {
namespace {

const std::string kHeader =
    "# ZeroShard checkpoint manifest 1: CRC-32 (zlib's, as Python's zlib.crc32), size in bytes, file\n";

std::string refusal(const std::string& text) {
  try {
    parse_manifest(text, "DIR/TAG/manifest.txt");
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(FileManifest, TextRoundTrips) {
  const Manifest manifest{{"index.h5", {20480, 0x5d0f6a13u}}, {"shard_00000.h5", {5246976, 0x0b7e44c2u}},
                          {"shard_00001.h5", {0, 0}}};
  const std::string text = manifest_text(manifest);
  EXPECT_EQ(text, kHeader + "5d0f6a13 20480 index.h5\n0b7e44c2 5246976 shard_00000.h5\n00000000 0 shard_00001.h5\n");
  EXPECT_EQ(parse_manifest(text, "m"), manifest);
}

TEST(FileManifest, EveryMalformedLineIsRefusedNamingIt) {
  const std::string good = "5d0f6a13 20480 index.h5\n";
  EXPECT_EQ(refusal(kHeader + good), "");
  struct Case {
    std::string text, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"", "the manifest is empty"},
           {"# another header\n" + good, "line 1"},
           {kHeader + "5d0f6a13 20480 index.h5", "does not end with a newline"},
           {kHeader + "5D0F6A13 20480 index.h5\n", "not 8 lowercase hex digits"},
           {kHeader + "5d0f6a1 20480 index.h5\n", "not 8 lowercase hex digits"},
           {kHeader + "5d0f6a13  20480 index.h5\n", "is not a byte count"},
           {kHeader + "5d0f6a13 -1 index.h5\n", "is not a byte count"},
           {kHeader + "5d0f6a13 99999999999999999999 index.h5\n", "is not a byte count"},
           {kHeader + "5d0f6a13 12x index.h5\n", "is not a byte count"},
           {kHeader + "5d0f6a13 20480\n", "expected 'CRC32 BYTES FILE'"},
           {kHeader + "5d0f6a13 20480 ../index.h5\n", "is not a file of the tag directory"},
           {kHeader + "5d0f6a13 20480 ..\n", "is not a file of the tag directory"},
           {kHeader + "5d0f6a13 20480 a b\n", "is not a file of the tag directory"},
           {kHeader + good + good, "'index.h5' is listed twice"},
       }) {
    const std::string message = refusal(c.text);
    EXPECT_NE(message.find(c.expected), std::string::npos) << "'" << c.text << "': " << message;
    EXPECT_NE(message.find("DIR/TAG/manifest.txt"), std::string::npos) << message;
  }
}

TEST(FileManifest, RangeDigestsCombineIntoTheWholeFilesCrc) {
  std::mt19937 random(7);
  std::string bytes(3'000'001, '\0');
  for (char& b : bytes) b = static_cast<char>(random());
  const std::string path = (std::filesystem::temp_directory_path() / ("zs_manifest_" + std::to_string(::getpid()))).string();
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const auto reference =
      static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  EXPECT_EQ(digest_of_file(path), (FileDigest{static_cast<std::int64_t>(bytes.size()), reference}));
  for (int ranks : {1, 2, 3, 4, 7}) {  // the split a shared-file save of `ranks` ranks makes
    FileDigest whole;
    const auto size = static_cast<std::int64_t>(bytes.size());
    for (int r = 0; r < ranks; ++r)
      whole = concatenated(whole, digest_of_file(path, size * r / ranks, size * (r + 1) / ranks - size * r / ranks));
    EXPECT_EQ(whole, (FileDigest{size, reference})) << ranks << " ranks";
  }
  try {
    digest_of_file(path, 10, static_cast<std::int64_t>(bytes.size()));
    ADD_FAILURE() << "a range past the end was digested";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("ends at byte"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace zs::checkpoint
