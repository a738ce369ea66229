// Activation memory plan: every arena tensor gets an offset in the one arena buffer. Tensors whose
// lifetimes don't overlap share bytes; views share their base's bytes; resident constants and graph
// inputs/outputs live for the whole program.

import FMBFormat

public struct ArenaPlan: Sendable {
    /// Bundle tensors, in a deterministic order.
    public var tensors: [Tensor]
    /// Graph value name → index in `tensors`.
    public var index: [String: UInt32]
    public var arenaSize: UInt64
    /// Σ of every non-view tensor's size: what the arena would be without reuse.
    public var unsharedSize: UInt64
    /// The most bytes live at any one step (Σ of the aligned tensors whose lifetimes cover it): no placement of
    /// these lifetimes can make the arena smaller, so `arenaSize / livePeakSize` is the placement's overhead.
    public var livePeakSize: UInt64
    /// The first step at which `livePeakSize` bytes are live (−1: before the first step, where only the tensors that
    /// live throughout are), and the largest tensors live there (by their aligned size, largest first, at most 3):
    /// where a smaller arena must come from.
    public var livePeakStep: Int
    public var livePeakTensors: [(name: String, bytes: UInt64)]
}

public enum ArenaPlanner {
    /// Offsets are multiples of this, which covers every device's minStorageBufferOffsetAlignment.
    public static let alignment: UInt64 = 256

    public static func plan(_ program: LoweredProgram, constantData: (ArenaTensor) throws -> DataRange) throws -> ArenaPlan {
        let names = program.tensors.keys.sorted()
        func root(_ name: String) throws -> String {
            var current = name
            var hops = 0
            while let base = program.tensors[current]?.viewOf {
                current = base
                hops += 1
                if hops > program.tensors.count {
                    throw CompileError(file: "<lowering>", "tensor '\(name)' is a view of itself")
                }
            }
            guard program.tensors[current] != nil else {
                throw CompileError(file: "<lowering>", "tensor '\(name)' is a view of an unknown tensor '\(current)'")
            }
            return current
        }

        // Lifetimes of base tensors, in step indices (inclusive).
        let whole = (first: -1, last: program.steps.count)
        var life: [String: (first: Int, last: Int)] = [:]
        for (k, step) in program.steps.enumerated() {
            for name in step.tensors {
                let base = try root(name)
                let current = life[base] ?? (k, k)
                life[base] = (min(current.first, k), max(current.last, k))
            }
        }
        for io in program.inputs + program.outputs {
            life[try root(io.name)] = whole
        }
        for check in program.checks {  // zeroed before the first step, read back after the last
            life[try root(check.tensor)] = whole
        }
        for name in names where program.tensors[name]?.constant != nil {
            life[name] = whole
        }

        // Greedy placements (Pisarchyk & Lee, "Efficient Memory Management for Deep Neural Net Inference"): each
        // tensor in turn at the lowest offset where it fits beside every placed tensor whose lifetime overlaps its own.
        // Two orders are tried and the smaller arena kept (by size when equal, so the plan is deterministic):
        // largest first, and by breadth, the tensors live at the busiest steps first (the most bytes live at a step
        // of the tensor's lifetime), so the tensors that make the live peak sit beside each other before the rest
        // fill around them (Depth Anything L: 223.4 MiB by size, 183.3 by breadth, which is its live peak).
        let bases = names.filter { program.tensors[$0]?.viewOf == nil && life[$0] != nil }
        func slotSize(_ name: String) -> UInt64 { align(UInt64(max(program.tensors[name]!.byteSize, 4))) }
        let liveAt = liveBytes(bases, size: slotSize, life: { life[$0]! }, steps: program.steps.count)
        let bySize = bases.sorted {
            let a = program.tensors[$0]!.byteSize, b = program.tensors[$1]!.byteSize
            return a != b ? a > b : $0 < $1
        }
        var breadth: [String: UInt64] = [:]
        for name in bases {
            let span = life[name]!
            breadth[name] = liveAt[(span.first + 1)...(span.last + 1)].max() ?? 0
        }
        let byBreadth = bases.sorted {
            let a = breadth[$0]!, b = breadth[$1]!
            if a != b { return a > b }
            let x = slotSize($0), y = slotSize($1)
            if x != y { return x > y }
            let p = life[$0]!.first, q = life[$1]!.first
            return p != q ? p > q : $0 < $1  // the later first: a chain of equal tensors packs back from the peak
        }
        let placements = [bySize, byBreadth].map { place($0, size: slotSize, life: { life[$0]! }) }
        let (offsets, arenaSize) = placements.min { $0.size < $1.size }!

        // The live peak: the first step with the most bytes live.
        var livePeak: UInt64 = 0, peakAt = 0
        for (i, live) in liveAt.enumerated() where live > livePeak { (livePeak, peakAt) = (live, i) }
        let peakStep = peakAt - 1
        let atPeak = bases.filter { life[$0]!.first <= peakStep && peakStep <= life[$0]!.last }
            .map { (name: $0, bytes: slotSize($0)) }
            .sorted { $0.bytes != $1.bytes ? $0.bytes > $1.bytes : $0.name < $1.name }

        var tensors: [Tensor] = []
        var index: [String: UInt32] = [:]
        var unshared: UInt64 = 0
        for name in names {
            let spec = program.tensors[name]!
            let base = try root(name)
            guard let offset = offsets[base] else { continue }  // never read nor written
            let constant = try spec.constant.map { _ in try constantData(spec) }
            if spec.viewOf == nil { unshared += align(UInt64(spec.byteSize)) }
            index[name] = UInt32(tensors.count)
            tensors.append(Tensor(name: name, offset: offset, size: UInt64(spec.byteSize), constant: constant))
        }
        return ArenaPlan(tensors: tensors, index: index, arenaSize: max(arenaSize, alignment), unsharedSize: unshared,
                         livePeakSize: livePeak, livePeakStep: peakStep, livePeakTensors: Array(atPeak.prefix(3)))
    }

    static func align(_ value: UInt64) -> UInt64 { (value + alignment - 1) / alignment * alignment }

    /// The bytes live at each step −1 … `steps` (index i is step i − 1): + size at a tensor's first step, − after its
    /// last.
    static func liveBytes(_ names: [String], size: (String) -> UInt64, life: (String) -> (first: Int, last: Int),
                          steps: Int) -> [UInt64] {
        var delta = [Int64](repeating: 0, count: steps + 3)
        for name in names {
            let span = life(name)
            delta[span.first + 1] += Int64(size(name))
            delta[span.last + 2] -= Int64(size(name))
        }
        var live: Int64 = 0
        return delta.dropLast().map { d in
            live += d
            return UInt64(live)
        }
    }

    /// Places `order`'s tensors one by one, each at the lowest offset where it fits beside every placed tensor whose
    /// lifetime overlaps its own. Returns each tensor's offset and the arena's size.
    static func place(_ order: [String], size: (String) -> UInt64, life: (String) -> (first: Int, last: Int))
        -> (offsets: [String: UInt64], size: UInt64) {
        var placed: [(offset: UInt64, size: UInt64, first: Int, last: Int)] = []
        var offsets: [String: UInt64] = [:]
        var arenaSize: UInt64 = 0
        for name in order {
            let bytes = size(name)
            let span = life(name)
            let conflicts = placed.filter { $0.first <= span.last && span.first <= $0.last }.sorted { $0.offset < $1.offset }
            var offset: UInt64 = 0
            for other in conflicts where offset + bytes > other.offset {
                offset = max(offset, other.offset + other.size)
            }
            placed.append((offset, bytes, span.first, span.last))
            offsets[name] = offset
            arenaSize = max(arenaSize, offset + bytes)
        }
        return (offsets, arenaSize)
    }
}
