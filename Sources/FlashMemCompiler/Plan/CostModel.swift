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
    /// What a product on those units sustains, FLOP/s (its operand bytes still at `memoryBandwidth`). 0: the device
    /// has none, or they are not measured (such steps are estimated at `flopsPerSecond`).
    public var cooperativeMatrixFlopsPerSecond = 0.0
    /// The latency of a product on those units per value of K that one workgroup walks: its slabs depend on one
    /// another (read, stage, barrier, multiply), so a product of few rows takes K × this however few its FLOPs. 0:
    /// not measured.
    public var cooperativeMatrixSecondsPerK = 0.0
    /// What a product split over K costs besides its slices' share of K: every workgroup stores fp32 partial sums
    /// through shared memory (the reduction is a step of its own).
    public var cooperativeMatrixSplitSeconds = 0.0
    /// What a fused attention (attention.comp) sustains, FLOP/s (0: `flopsPerSecond`).
    public var attentionFlopsPerSecond = 0.0
    /// GPU time lost at each compute-submission boundary of a streamed run (`ScheduleProblem.submissionSeconds`).
    public var submissionSeconds: Double = 0
    /// The most keys an attention may have for `--fuse-attention auto` to make it one attention.comp step
    /// (`CompileOptions.attentionFusionRule`). NVIDIA: 256. On an H100, 2026-12-06 (Benchmarks/ab-bench.sh, fp16,
    /// GPU time fused / unfused): GPT-2 and GPT-Neo-125M (128 keys) −2%, ViT-B/16 and ViT 1024/12 (197 keys) ±1%,
    /// Depth Anything S (1370 keys) +20%, Whisper-Medium's encoder (1500 keys) +40%: 16 query rows a workgroup
    /// reuse K and V too little for long sequences. Lavapipe: 0 (MiniLM-L6, 128 keys: the fused steps 317–378 ms
    /// against 234–290 ms unfused).
    public var fusedAttentionMaxKeys = 256
    /// Invocations per workgroup of the fused attention (attention.comp's ATT_WG, 64 or 256). NVIDIA: 256. On an H100,
    /// 2026-12-07 (Benchmarks/attention-bench.sh, fp16, GPU time 64 → 256, the same bits): GPT-Neo-2.7B's attention
    /// (20 heads, 128 keys, D 128) 0.131 → 0.061 ms, GPT-Neo-125M's 0.040 → 0.020, ViT-B/16's 0.058 → 0.033, 1024 keys
    /// × 16 heads 0.92 → 0.65; whole models (ab-bench.sh) GPT-Neo-125M 2.05 → 1.70 ms, ViT-B/16 2.41 → 2.07 ms.
    /// Lavapipe: 64 (the same bench on the development VM: 5.7 → 9.8 ms for 4 heads × 40 keys × 128).
    public var attentionInvocations = 64
    /// maxStorageBufferRange of the device: attention scores larger than this cannot be bound unfused, so `auto`
    /// fuses them whatever their length.
    public var storageBufferRange = Int(UInt32.max)

    /// NVIDIA H100 80GB HBM3 over Vulkan 1.4 (driver 580), from the device machine's H100 hosts:
    /// - `cooperativeMatrix`: vkprobe lists VK_NV_cooperative_matrix (and the KHR and NV2 extensions) with f16 × f16
    ///   → f32 at M16 N16 K16 (Benchmarks/results/h100-vkprobe-2026-12-07b.txt); every tensor-core figure of
    ///   issue 10 was measured on these cards.
    /// - `cooperativeMatrixFlopsPerSecond` 170 TFLOP/s: gemm_cm.comp's 4096³ product in fmc, 173 TFLOP/s (the
    ///   coopmat-bench table of 2026-12-07b). Smaller products sustain less and are bounded by their bytes instead:
    ///   GPT-Neo-2.7B's 128 × 10240 × 2560 took 0.099 ms, 68 TFLOP/s.
    /// - `transferBandwidth` 30 GB/s: the hosts differ. vkprobe's copies into images ran at 30.1 GB/s on one
    ///   (2026-12-06) and 51.2 GB/s on another (2026-12-07b); streamed runs measured 30–34 GB/s. The lower one, so
    ///   plans made without a profile are not short of time on the slower host.
    /// - `cooperativeMatrixSecondsPerK` 28 ns, `cooperativeMatrixSplitSeconds` 10 µs, `attentionFlopsPerSecond` 4 TFLOP/s:
    ///   fitted to the per-step GPU times of ViT-B/16 and GPT-Neo-2.7B fp16 (fmrun --profile-out, 2026-12-07;
    ///   Benchmarks/results/h100-profile-*-2026-12-07.json, the attentions from h100-attention-bench-2026-12-07.log).
    ///   Their products have 128 or 197 rows, so FLOPs / 170 TFLOP/s predicted them 2–3× too fast: a workgroup's
    ///   chain of slabs took 0.83–1.03 µs per 32 values of K whatever the tile (ViT's 197 × 768 × 2304 26.6 µs,
    ///   GPT-Neo's 128 × 2560 × 10240 80.3 µs, its lm_head pieces of 40 slabs of 64 71–91 µs), split-K products
    ///   6–17 µs more than their slices' K alone; attentions ran at 2.5–4.8 TFLOP/s (ViT 33 µs, GPT-Neo-125M 20,
    ///   1.3B 33, 2.7B 61). ViT-B/16's Σ kernels is now estimated at 2.28 ms (was 1.34) against 2.10 measured, its
    ///   products at 1.21 ms against 1.14; GPT-Neo-2.7B's qkv / out / fc / proj / lm_head piece at 77 / 33 / 77 / 87 /
    ///   77 µs against 75 / 40 / 80 / 86 / 71–91 (were 37 / 16 / 46 / 46 / 55).
    /// - `submissionSeconds`: the H200's 23 µs (same driver, not measured separately).
    /// - `flopsPerSecond`, `memoryBandwidth`, `launchSeconds`: the plain fp32 kernels (DESIGN.md).
    /// - `attentionInvocations` 256: measured here (the property's note).
    public static let h100 = CostModel(name: "h100", flopsPerSecond: 8e12, memoryBandwidth: 1.5e12,
                                       transferBandwidth: 30e9, launchSeconds: 5e-6, cooperativeMatrix: true,
                                       cooperativeMatrixFlopsPerSecond: 170e12, cooperativeMatrixSecondsPerK: 28e-9,
                                       cooperativeMatrixSplitSeconds: 10e-6, attentionFlopsPerSecond: 4e12,
                                       submissionSeconds: 23e-6, attentionInvocations: 256)
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
    ///   size 32 (Benchmarks/results/h200-vkprobe-2026-12-04.txt). `cooperativeMatrixFlopsPerSecond`: the H100's
    ///   figure (the same GH100 SMs and tensor cores; gemm_cm.comp's current form was not timed on an H200), as are
    ///   `cooperativeMatrixSecondsPerK`, `cooperativeMatrixSplitSeconds`, `attentionFlopsPerSecond` and
    ///   `attentionInvocations`.
    /// - `submissionSeconds` 23 µs: the gap between two steps where a streamed run starts another compute
    ///   submission, beyond any wait for a copy (median 20–27 µs over ViT-B/16 and GPT-Neo-1.3B at 25% and 50%,
    ///   the same with and without a semaphore wait; inside a submission 1.4–3.5 µs per step): fmrun --trace,
    ///   Benchmarks/trace_gaps.py, Benchmarks/results/h200-trace-gaps-2026-12-04.txt.
    public static let h200 = CostModel(name: "h200", flopsPerSecond: 8.1e12, memoryBandwidth: 851e9,
                                       transferBandwidth: 42e9, launchSeconds: 5e-6, cooperativeMatrix: true,
                                       cooperativeMatrixFlopsPerSecond: 170e12, cooperativeMatrixSecondsPerK: 28e-9,
                                       cooperativeMatrixSplitSeconds: 10e-6, attentionFlopsPerSecond: 4e12,
                                       submissionSeconds: 23e-6, attentionInvocations: 256)
    /// Mesa lavapipe on a small CPU.
    public static let lavapipe = CostModel(name: "lavapipe", flopsPerSecond: 2e10, memoryBandwidth: 1e10,
                                           transferBandwidth: 5e9, launchSeconds: 5e-5, fusedAttentionMaxKeys: 0,
                                           storageBufferRange: 128 << 20)
    public static let all = [h200, h100, lavapipe]

    /// A step's estimated time: its arithmetic, its bytes or (a product on the cooperative-matrix units) its chain
    /// of K slabs, whichever takes longest, plus a launch (and a split product's partial sums).
    public func seconds(flops: Double, bytes: Double, work: StepWork = .plain) -> Double {
        let memory = bytes / memoryBandwidth
        switch work {
        case .cooperativeMatrix(let k, let slices) where cooperativeMatrixFlopsPerSecond > 0:
            return max(flops / cooperativeMatrixFlopsPerSecond, memory, Double(k) * cooperativeMatrixSecondsPerK)
                + launchSeconds + (slices > 1 ? cooperativeMatrixSplitSeconds : 0)
        case .attention where attentionFlopsPerSecond > 0:
            return max(flops / attentionFlopsPerSecond, memory) + launchSeconds
        case .plain, .attention, .cooperativeMatrix:
            return max(flops / flopsPerSecond, memory) + launchSeconds
        }
    }
}

