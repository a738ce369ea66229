// Where weight images go in the weight space (FORMAT.md, `placement`). The compiler places slots with its size
// model when it plans; the runtime places them again with the device's real image sizes when a device pads an
// image past its planned slot. Both call this one function, so a plan and its re-placement follow the same rules.

/// Deterministic slot placement: resident slots packed from offset 0, largest first (ties by index), then streamed
/// slots first-fit in `streamedOrder` (default: largest first), each at the lowest aligned offset where it shares
/// bytes with no placed slot whose window overlaps its own. No slot straddles a multiple of `segmentBytes`.
public enum SlotPlacement {
    public struct Result: Equatable, Sendable {
        public var offsets: [UInt64]
        /// The highest slot end.
        public var end: UInt64
    }

    public struct TooLarge: Error, Equatable, Sendable {
        public var index: Int
        public var size: UInt64
        public var segmentBytes: UInt64
    }

    public static func place(sizes: [UInt64], alignments: [UInt64], resident: [Bool], windows: [ClosedRange<Int>],
                             segmentBytes: UInt64, streamedOrder: [Int]? = nil) throws -> Result {
        precondition(sizes.count == alignments.count && sizes.count == resident.count && sizes.count == windows.count)
        if let i = sizes.indices.first(where: { sizes[$0] > segmentBytes }) {
            throw TooLarge(index: i, size: sizes[i], segmentBytes: segmentBytes)
        }
        var offsets = [UInt64](repeating: 0, count: sizes.count)
        var end: UInt64 = 0
        /// The lowest offset ≥ `from` aligned for image i that keeps it inside one segment.
        func fit(_ from: UInt64, _ i: Int) -> UInt64 {
            let offset = alignUp(from, alignments[i])
            if sizes[i] == 0 || offset / segmentBytes == (offset + sizes[i] - 1) / segmentBytes { return offset }
            return alignUp((offset / segmentBytes + 1) * segmentBytes, alignments[i])
        }
        let largestFirst = sizes.indices.sorted { (sizes[$0], $1) > (sizes[$1], $0) }
        for i in largestFirst where resident[i] {
            offsets[i] = fit(end, i)
            end = offsets[i] + sizes[i]
        }
        let residentEnd = end
        let order = (streamedOrder ?? largestFirst).filter { !resident[$0] }
        var placed: [Int] = []
        for i in order {
            let live = placed.filter { windows[$0].overlaps(windows[i]) }.sorted { offsets[$0] < offsets[$1] }
            var candidate = fit(residentEnd, i)
            for other in live {
                if candidate + sizes[i] <= offsets[other] { break }  // fits in the gap before `other`
                candidate = fit(max(candidate, offsets[other] + sizes[other]), i)
            }
            offsets[i] = candidate
            placed.append(i)
            end = max(end, candidate + sizes[i])
        }
        return Result(offsets: offsets, end: end)
    }

    /// The largest sum of slot sizes live at one step (resident slots always live): what any placement needs at
    /// least, before fragmentation.
    public static func peakLiveBytes(sizes: [UInt64], resident: [Bool], windows: [ClosedRange<Int>],
                                     stepCount: Int) -> UInt64 {
        var delta = [Int64](repeating: 0, count: stepCount + 2)
        var always: UInt64 = 0
        for i in sizes.indices {
            if resident[i] {
                always += sizes[i]
            } else {
                delta[min(windows[i].lowerBound, stepCount)] += Int64(sizes[i])
                delta[min(windows[i].upperBound + 1, stepCount + 1)] -= Int64(sizes[i])
            }
        }
        var live: Int64 = 0, peak: Int64 = 0
        for d in delta {
            live += d
            peak = max(peak, live)
        }
        return always + UInt64(peak)
    }
}

@inline(__always)
public func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    alignment <= 1 ? value : (value + alignment - 1) / alignment * alignment
}
