#pragma once
// The parts of a checkpoint data file (shard_file.hpp) that the per-rank and the shared-file
// writers lay down the same way.

#include <hdf5.h>

#include <cstdint>
#include <vector>

#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/sharding/fragment_map.hpp"

namespace zs::checkpoint::detail {

/// Throws CheckpointError if a buffer of `unit` does not hold exactly one shard of its layout.
void require_shard_sized(const UnitShard& unit, const ShardBuffer& buffer);
/// /units/<unit.name> with the attributes that rebuild its FlatLayout.
Hid write_unit_group(hid_t units_group, const UnitShard& unit);
/// The `fragments` table of a unit group. In a file shared by all ranks every rank creates the
/// dataset (a collective call) and only the one passing `write_values` writes its contents.
void write_fragment_table(hid_t group, const std::vector<sharding::Fragment>& fragments, bool write_values = true);
/// The float32 dataset creation properties: no fill (every element is written once).
Hid unfilled_dataset_properties();
/// The checksum attributes of a buffer dataset: CRC-32 per block of each rank's slice.
void write_checksums(hid_t dataset, const std::vector<std::uint32_t>& crc32);

}  // namespace zs::checkpoint::detail
