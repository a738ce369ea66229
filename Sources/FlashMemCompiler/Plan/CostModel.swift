// Per-device constants that turn a step's work into predicted seconds, and the host→device bandwidth the load
// plan streams at (LoadPlanning). A measured profile (`fmc compile --profile`) replaces both.

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
    /// The device runs gemm_cm.comp: VK_NV_cooperative_matrix with fp16 × fp16 → fp32 16 × 16 × 16 fragments on
    /// subgroups of 32 (`fmc compile --tensor-cores auto` uses them for fp16 bundles of this target).
    public var cooperativeMatrix = false
    /// GPU time lost at each compute-submission boundary of a streamed run (`ScheduleProblem.submissionSeconds`).
    public var submissionSeconds: Double = 0
    /// The most keys an attention may have for `--fuse-attention auto` to make it one attention.comp step
    /// (`CompileOptions.attentionFusionRule`). NVIDIA: 256. On an H100, 2026-12-06 (Benchmarks/ab-bench.sh, fp16,
    /// GPU time fused / unfused): GPT-2 and GPT-Neo-125M (128 keys) −2%, ViT-B/16 and ViT 1024/12 (197 keys) ±1%,
    /// Depth Anything S (1370 keys) +20%, Whisper-Medium's encoder (1500 keys) +40%: 16 query rows a workgroup
    /// reuse K and V too little for long sequences. Lavapipe: 0 (MiniLM-L6, 128 keys: the fused steps 317–378 ms
    /// against 234–290 ms unfused).
    public var fusedAttentionMaxKeys = 256
    /// maxStorageBufferRange of the device: attention scores larger than this cannot be bound unfused, so `auto`
    /// fuses them whatever their length.
    public var storageBufferRange = Int(UInt32.max)

    /// NVIDIA H100 over Vulkan (DESIGN.md: 49–50 GB/s host→device; staging memcpy is the tighter bound). No
    /// `cooperativeMatrix`: its probe listed VK_KHR_cooperative_matrix and VK_NV_cooperative_matrix2, not the NV
    /// extension gemm_cm.comp uses (`--tensor-cores on` still asks for it).
    public static let h100 = CostModel(name: "h100", flopsPerSecond: 8e12, memoryBandwidth: 1.5e12,
                                       transferBandwidth: 25e9, launchSeconds: 5e-6)
    /// NVIDIA H200 over Vulkan 1.4 (driver 580), measured with vkprobe on the device machine (16 cores,
    /// PCIe gen5 x16):
    /// - `transferBandwidth` 42 GB/s: what streaming sustains, min(copy into images, host decode). fmrun's
    ///   transfer-queue timestamps measured 42.2–42.9 GB/s of vkCmdCopyBufferToImage into RGBA16F 2D-array
    ///   images while GPT-Neo-1.3B/2.7B streamed (vkprobe: 44.8 GB/s alone, 49.6 GB/s buffer→buffer), and the
    ///   streamer's memcpy from the bundle's mapping into pinned staging ran at 50–64 GB/s on 16 cores (vkprobe's
    ///   plain memcpy test: 34.4 GB/s on 16 threads, 8.9 on one), so the copy engine is the bound
    ///   (Benchmarks/README.md, "The FlashMem core").
    /// - `flopsPerSecond` 8.1 TFLOP/s: a 16×16-tiled fp32 SSBO matmul (2048³), the floor of our kernels.
    /// - `memoryBandwidth` 851 GB/s: a device-to-device vkCmdCopyBuffer on the compute queue (bytes copied per
    ///   second), the rate a kernel that reads its operands once can expect.
    /// - `launchSeconds` 5 µs: not measured on the H200; the H100's figure (one dispatch in a recorded batch).
    /// - `cooperativeMatrix`: vkprobe lists VK_NV_cooperative_matrix with f16 × f16 → f32 at M16 N16 K16, subgroup
    ///   size 32 (Benchmarks/results/h200-vkprobe-2026-12-04.txt).
    /// - `submissionSeconds` 23 µs: the gap between two steps where a streamed run starts another compute
    ///   submission, beyond any wait for a copy (median 20–27 µs over ViT-B/16 and GPT-Neo-1.3B at 25% and 50%,
    ///   the same with and without a semaphore wait; inside a submission 1.4–3.5 µs per step): fmrun --trace,
    ///   Benchmarks/trace_gaps.py, Benchmarks/results/h200-trace-gaps-2026-12-04.txt.
    public static let h200 = CostModel(name: "h200", flopsPerSecond: 8.1e12, memoryBandwidth: 851e9,
                                       transferBandwidth: 42e9, launchSeconds: 5e-6, cooperativeMatrix: true,
                                       submissionSeconds: 23e-6)
    /// Mesa lavapipe on a small CPU.
    public static let lavapipe = CostModel(name: "lavapipe", flopsPerSecond: 2e10, memoryBandwidth: 1e10,
                                           transferBandwidth: 5e9, launchSeconds: 5e-5, fusedAttentionMaxKeys: 0,
                                           storageBufferRange: 128 << 20)
    public static let all = [h200, h100, lavapipe]

    public func seconds(flops: Double, bytes: Double) -> Double {
        max(flops / flopsPerSecond, bytes / memoryBandwidth) + launchSeconds
    }
}

