// The load schedule: when each weight chunk's copy is issued, so that it lands before the step that
// first reads it, the weights in flight fit the memory budget, and copies overlap with compute.
//
// This is the fast heuristic (DESIGN.md, "The schedule problem"): every image is prefetched just far
// enough ahead that the compute time of the steps in between covers its transfer time, then pulled later
// where the budget is exceeded. An exact solver for small instances comes with the solved schedule.

import FMBFormat

/// Per-device constants that turn work into estimated seconds.
public struct CostModel: Sendable, Equatable {
    public var name: String
    /// Sustained throughput of our kernels, FLOP/s.
    public var flopsPerSecond: Double
    /// Device memory bandwidth, bytes/s.
    public var memoryBandwidth: Double
    /// Host→device copy bandwidth on the transfer queue, bytes/s.
    public var transferBandwidth: Double
    /// Fixed cost of one dispatch, seconds.
    public var launchSeconds: Double

    /// NVIDIA H100 over Vulkan (DESIGN.md: 49–50 GB/s host→device; staging memcpy is the tighter bound).
    public static let h100 = CostModel(name: "h100", flopsPerSecond: 8e12, memoryBandwidth: 1.5e12,
                                       transferBandwidth: 25e9, launchSeconds: 5e-6)
    /// NVIDIA H200 over Vulkan 1.4 (driver 580), measured with vkprobe on the device machine (16 cores,
    /// PCIe gen5 x16):
    /// - `transferBandwidth` 34 GB/s: what streaming sustains, min(copy into images, host memcpy). A
    ///   vkCmdCopyBufferToImage from pinned staging into RGBA16F 2D-array images ran at 44.8 GB/s on the
    ///   dedicated transfer queue (49.6 GB/s buffer→buffer); memcpy from the bundle's mapping into mapped
    ///   host-visible staging reached 34.4 GB/s on 16 threads (8.9 on one), so the host copy is the bound.
    /// - `flopsPerSecond` 8.1 TFLOP/s: a 16×16-tiled fp32 SSBO matmul (2048³), the floor of our kernels.
    /// - `memoryBandwidth` 851 GB/s: a device-to-device vkCmdCopyBuffer on the compute queue (bytes copied per
    ///   second), the rate a kernel that reads its operands once can expect.
    /// - `launchSeconds` 5 µs: not measured on the H200; the H100's figure (one dispatch in a recorded batch).
    public static let h200 = CostModel(name: "h200", flopsPerSecond: 8.1e12, memoryBandwidth: 851e9,
                                       transferBandwidth: 34e9, launchSeconds: 5e-6)
    /// Mesa lavapipe on a small CPU.
    public static let lavapipe = CostModel(name: "lavapipe", flopsPerSecond: 2e10, memoryBandwidth: 1e10,
                                           transferBandwidth: 5e9, launchSeconds: 5e-5)
    public static let all = [h200, h100, lavapipe]

    public func seconds(flops: Double, bytes: Double) -> Double {
        max(flops / flopsPerSecond, bytes / memoryBandwidth) + launchSeconds
    }
}

/// What the scheduler needs to know about one weight image.
public struct ScheduledImage: Sendable {
    public var bytes: UInt64
    public var firstUse: Int
    public var lastUse: Int
    /// This image's chunks (indices into the bundle's chunk list) and their sizes, in copy order.
    public var chunks: [(index: Int, bytes: UInt64)]
}

public enum Scheduler {
    /// - Parameters:
    ///   - budget: bytes available to weights in flight (the pool); nil = unbounded.
    public static func solve(stepSeconds: [Double], images: [ScheduledImage], chunkCount: Int,
                             model: CostModel, budget: UInt64?) throws -> Schedule {
        let stepCount = stepSeconds.count
        // Prefetch distance per image from the load capacity of the steps before its first use.
        var issue = images.map { image -> Int in
            let needed = Double(image.bytes) / model.transferBandwidth
            var start = image.firstUse
            var covered = 0.0
            while start > 0 && covered < needed {
                start -= 1
                covered += stepSeconds[start]
            }
            return start
        }

        if let budget {
            try fit(&issue, images: images, stepCount: stepCount, budget: budget)
        }

        let byUse = images.indices.sorted { (issue[$0], images[$0].firstUse, $0) < (issue[$1], images[$1].firstUse, $1) }
        var order: [UInt32] = []
        var issueStep = [UInt32](repeating: 0, count: chunkCount)
        for i in byUse {
            for chunk in images[i].chunks {
                order.append(UInt32(chunk.index))
                issueStep[chunk.index] = UInt32(issue[i])
            }
        }

        let predicted = simulate(stepSeconds: stepSeconds, images: images, issue: issue, order: byUse, model: model)
        let totalBytes = images.reduce(0.0) { $0 + Double($1.bytes) }
        let lowerBound = max(stepSeconds.reduce(0, +), totalBytes / model.transferBandwidth)
        return Schedule(order: order, issueStep: issueStep,
                        firstUse: images.map { UInt32($0.firstUse) }, lastUse: images.map { UInt32($0.lastUse) },
                        budgetBytes: budget ?? 0, bandwidth: model.transferBandwidth, stepSeconds: stepSeconds,
                        predictedSeconds: predicted, lowerBoundSeconds: lowerBound)
    }

    /// The largest sum of image sizes whose windows [issue, lastUse] cover one step.
    public static func peakPool(images: [ScheduledImage], issue: [Int], stepCount: Int) -> UInt64 {
        var delta = [Int64](repeating: 0, count: stepCount + 2)
        for (i, image) in images.enumerated() {
            delta[issue[i]] += Int64(image.bytes)
            delta[image.lastUse + 1] -= Int64(image.bytes)
        }
        var live: Int64 = 0
        var peak: Int64 = 0
        for d in delta {
            live += d
            peak = max(peak, live)
        }
        return UInt64(peak)
    }

    /// Delays prefetches (latest-issued first) until the pool fits the budget at every step.
    static func fit(_ issue: inout [Int], images: [ScheduledImage], stepCount: Int, budget: UInt64) throws {
        func usage(at step: Int) -> UInt64 {
            images.indices.reduce(0) { $0 + (issue[$1] <= step && step <= images[$1].lastUse ? images[$1].bytes : 0) }
        }
        for step in 0..<stepCount {
            var used = usage(at: step)
            guard used > budget else { continue }
            // Images prefetched early (not yet read at this step) are pushed to issue after it.
            let early = images.indices
                .filter { issue[$0] <= step && images[$0].firstUse > step }
                .sorted { images[$0].firstUse > images[$1].firstUse }
            for i in early where used > budget {
                issue[i] = step + 1
                used -= images[i].bytes
            }
            if used > budget {
                throw CompileError(file: "<schedule>",
                    "memory budget of \(budget) bytes is too small: step \(step) reads \(used) bytes of weights at once")
            }
        }
    }

    /// Predicted makespan of a streamed run: copies in order on one transfer queue, each starting once
    /// its issue step may begin; a step starts when the previous one ended and its images have landed.
    static func simulate(stepSeconds: [Double], images: [ScheduledImage], issue: [Int], order: [Int],
                         model: CostModel) -> Double {
        var landed = [Double](repeating: 0, count: images.count)
        var queue = order[...]
        var transferFree = 0.0
        var previousEnd = 0.0
        var readers: [[Int]] = Array(repeating: [], count: stepSeconds.count)
        for (i, image) in images.enumerated() where image.firstUse < stepSeconds.count {
            readers[image.firstUse].append(i)
        }
        for k in stepSeconds.indices {
            while let i = queue.first, issue[i] <= k {
                queue.removeFirst()
                let start = max(transferFree, previousEnd)
                transferFree = start + Double(images[i].bytes) / model.transferBandwidth
                landed[i] = transferFree
            }
            let ready = readers[k].reduce(previousEnd) { max($0, landed[$1]) }
            previousEnd = ready + stepSeconds[k]
        }
        return previousEnd
    }
}
