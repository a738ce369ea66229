/// Where each weight image lives inside the one weight-pool allocation. Pure arithmetic, no Vulkan,
/// so it is tested on its own.
///
/// Preload mode gives every image its own bytes. Streaming mode lets images whose lifetimes do not
/// overlap share bytes: image i is alive over [windowStart_i, lastUse_i] (the step at which its first
/// copy may be issued through the last step that reads it), and two images may share bytes only if
/// one's lastUse < the other's windowStart — then the later image's copies wait (on the `computed`
/// timeline) for the step after the earlier image's last reader, so no kernel ever reads overwritten bytes.
struct WeightPlacement: Equatable {
    /// Offset of each image in the pool (a multiple of its alignment).
    var offsets: [UInt64]
    /// Bytes the pool needs: the highest end of any placement.
    var poolSize: UInt64

    /// An image's lifetime in steps, inclusive at both ends.
    struct Window: Equatable {
        var start: Int
        var end: Int

        func overlaps(_ other: Window) -> Bool { !(end < other.start || other.end < start) }
    }

    /// Every image at its own offset, in image order.
    static func separate(sizes: [UInt64], alignments: [UInt64]) -> WeightPlacement {
        var offsets: [UInt64] = []
        var end: UInt64 = 0
        for (size, alignment) in zip(sizes, alignments) {
            let offset = alignUp(end, alignment)
            offsets.append(offset)
            end = offset + size
        }
        return WeightPlacement(offsets: offsets, poolSize: end)
    }

    /// Deterministic first-fit: images are placed largest first (ties by index); each goes at the lowest
    /// aligned offset where it overlaps in memory no already-placed image whose window overlaps its own.
    static func aliased(sizes: [UInt64], alignments: [UInt64], windows: [Window]) -> WeightPlacement {
        precondition(sizes.count == alignments.count && sizes.count == windows.count)
        let order = sizes.indices.sorted { (sizes[$0], -$0) > (sizes[$1], -$1) }
        var offsets = [UInt64](repeating: 0, count: sizes.count)
        var placed: [Int] = []
        var poolSize: UInt64 = 0
        for image in order {
            // Blocks already placed that are alive at the same time, sorted by offset.
            let live = placed.filter { windows[$0].overlaps(windows[image]) }.sorted { offsets[$0] < offsets[$1] }
            var candidate: UInt64 = 0
            for other in live {
                let start = offsets[other], end = offsets[other] + sizes[other]
                let aligned = alignUp(candidate, alignments[image])
                if aligned + sizes[image] <= start { break }  // fits in the gap before `other`
                candidate = max(candidate, end)
            }
            let offset = alignUp(candidate, alignments[image])
            offsets[image] = offset
            placed.append(image)
            poolSize = max(poolSize, offset + sizes[image])
        }
        return WeightPlacement(offsets: offsets, poolSize: poolSize)
    }
}

@inline(__always)
func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    alignment <= 1 ? value : (value + alignment - 1) / alignment * alignment
}
