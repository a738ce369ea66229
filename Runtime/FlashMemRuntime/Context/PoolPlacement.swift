/// Where a session's fixed byte range in its `DeviceContext`'s pool goes, chosen once, at its first acquisition.
/// Pure values, no Vulkan.
///
/// Ranges of different sessions may overlap (the memory is aliased): a session whose range overlaps the range of
/// the session that needs it has its contents clobbered, not its objects destroyed. So the rule looks for a range
/// that overlaps as little that is still wanted as possible:
///
/// - candidates: either end of the pool (offset 0, or the pool's end minus the bytes, aligned down), and the
///   offsets just after or just before each range whose contents are valid (so a gap between two is found);
/// - a candidate overlapping a pinned (running, prefetching) session is out;
/// - the best candidate overlaps no valid contents; then the one whose overlapped sessions were used longest ago
///   (the newest `lastUse` among them is the oldest), then fewer overlapped bytes, then an end of the pool, then
///   the lower offset.
///
/// Chains alternate: with A B C D and room for two, A takes the bottom, B the top (it overlaps nothing there), C the
/// bottom (A was used longer ago than B), D the top, and the next pass finds each one's range overlapping only
/// the model run two before it.
enum PoolPlacement {
    /// A range already given to a session.
    struct Occupant: Equatable {
        var range: Range<UInt64>
        var state: State
    }

    enum State: Equatable {
        /// In use now: never overlapped.
        case pinned
        /// Valid contents, not in use; `lastUse` orders sessions by when they last stopped using their memory.
        case idle(lastUse: UInt64)
        /// Contents already clobbered: the range is as good as free.
        case clobbered
    }

    /// The offset of a range of `bytes` (a multiple of `alignment`) within `poolBytes`, or nil when every candidate
    /// overlaps a pinned session (wait for it) or `bytes` exceeds the pool.
    static func place(bytes: UInt64, alignment: UInt64, poolBytes: UInt64, occupants: [Occupant]) -> UInt64? {
        guard bytes <= poolBytes else { return nil }
        let alignment = max(alignment, 1)
        func down(_ x: UInt64) -> UInt64 { x / alignment * alignment }
        func up(_ x: UInt64) -> UInt64 { (x + alignment - 1) / alignment * alignment }
        let top = down(poolBytes - bytes)
        var candidates: [UInt64] = [0, top]
        for occupant in occupants where occupant.state != .clobbered {
            candidates.append(up(occupant.range.upperBound))
            if occupant.range.lowerBound >= bytes { candidates.append(down(occupant.range.lowerBound - bytes)) }
        }

        struct Score: Comparable {
            var overlapsValid: Bool
            var newestUse: UInt64
            var overlappedBytes: UInt64
            var inside: Bool  // not an end of the pool
            var offset: UInt64
            static func < (a: Score, b: Score) -> Bool {
                (!a.overlapsValid ? 0 : 1, a.newestUse, a.overlappedBytes, a.inside ? 1 : 0, a.offset)
                    < (!b.overlapsValid ? 0 : 1, b.newestUse, b.overlappedBytes, b.inside ? 1 : 0, b.offset)
            }
        }
        var best: Score? = nil
        for offset in Set(candidates) where offset <= top {
            let range = offset..<(offset + bytes)
            var score = Score(overlapsValid: false, newestUse: 0, overlappedBytes: 0,
                              inside: offset != 0 && offset != top, offset: offset)
            var blocked = false
            for occupant in occupants where occupant.range.overlaps(range) {
                switch occupant.state {
                case .pinned: blocked = true
                case let .idle(lastUse):
                    score.overlapsValid = true
                    score.newestUse = max(score.newestUse, lastUse)
                    score.overlappedBytes += UInt64(occupant.range.count)
                case .clobbered: break
                }
            }
            if !blocked, best.map({ score < $0 }) ?? true { best = score }
        }
        return best?.offset
    }
}
