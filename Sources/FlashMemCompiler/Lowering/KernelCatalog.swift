// The declarative table of kernels: one entry per shader file with the interface its header comment
// declares (bindings, push-constant block size) and the compile-time variant axes the lowering chooses
// from. The lowering asks for variants only through this table; ShaderTests compiles every entry.

import FMBFormat

/// One shader file of Shaders/ and its interface.
struct KernelFamily: Sendable {
    var file: String
    var bindings: [BindingKind]
    /// Bytes of the kernel's push-constant block (all fields are 32-bit, see PushConstants).
    var pushConstantSize: Int
    /// Compile-time axes: define name → the values the lowering may pick (first = default).
    var axes: [(define: String, values: [String])]

    /// Its weight image holds 8 halves per texel (`ImageFormat.half8`) in every precision, instead of the
    /// precision's format: a tensor-core kernel, which exists only in fp16 bundles.
    var halfTexels = false

    /// Kernels reading a weight image are compiled once per image format (WEIGHT_FORMAT).
    var readsWeightImage: Bool { bindings.contains(.storageImage) }

    /// The format of the weight image it reads in a bundle of `precision`.
    func weightFormat(_ precision: Precision) -> ImageFormat { halfTexels ? .half8 : precision.imageFormat }

    var stem: String { String(file.prefix(while: { $0 != "." })) }
}

enum KernelCatalog {
    private static let buffer = BindingKind.storageBuffer
    private static let image = BindingKind.storageImage

    /// Grouped convolutions. X, weights+bias, Y. Push: C H W OC OH OW ICG OCG OCBG OCB KH KW SH SW PT PL DH DW
    /// log2W log2H groupOffset. (CONV_OCT > 1 needs tiles that never straddle groups; the lowering uses 1.)
    static let conv2d = KernelFamily(file: "conv2d.comp", bindings: [buffer, image, buffer], pushConstantSize: 21 * 4,
                                     axes: [("CONV_PIX", ["4", "2", "1"]), ("CONV_OCT", ["1"])])
    /// X, weights+bias, Y or partial sums. Push: N C H W OC OH OW OCB KH KW SH SW PT PL DH DW K kPerSlice slices
    /// log2W log2H ocOffset OCtotal. (IG_TM 2 / IG_TN 8, 128 × 128 tiles, measured 1.3–2× slower than 64 × 64 on
    /// an H100.)
    static let conv2dIGemm = KernelFamily(file: "conv2d_igemm.comp", bindings: [buffer, image, buffer],
                                          pushConstantSize: 23 * 4,
                                          axes: [("IG_TM", ["1"]), ("IG_TN", ["4"])])
    /// A, B+bias, Y or partial sums, C. Push: M N K NB strideM strideK kPerSlice slices log2W log2H beta cStrideM
    /// cStrideN n0 ldY (n0 / ldY: a column piece's first output column and Y's row stride).
    static let gemm = KernelFamily(file: "gemm.comp", bindings: [buffer, image, buffer, buffer],
                                   pushConstantSize: 15 * 4, axes: [("GEMM_TM", ["4", "1"])])
    /// Many rows (M ≥ 64). A, B+bias, Y or partial sums, C. Push: the same block as gemm.
    static let gemmTiled = KernelFamily(file: "gemm_tiled.comp", bindings: [buffer, image, buffer, buffer],
                                        pushConstantSize: 15 * 4, axes: [("GT_TM", ["1", "2"]), ("GT_TN", ["1", "2"])])
    /// Tensor cores (VK_NV_cooperative_matrix), for a Lowering.coopmatTile shape. A, B+bias, Y or partial sums,
    /// C. Push: the same block as gemm. Axes: the tile (CoopmatTile.large, .small; every combination compiles).
    static let gemmCoopmat = KernelFamily(file: "gemm_cm.comp", bindings: [buffer, image, buffer, buffer],
                                          pushConstantSize: 15 * 4,
                                          axes: [("CM_BM", ["128", "64"]), ("CM_BN", ["128", "64"]),
                                                 ("CM_WM", ["2"]), ("CM_WN", ["4", "2"]), ("CM_HALF_A", ["0", "1"]),
                                                 ("CM_DIRECT", ["0", "1"])],
                                          halfTexels: true)
    /// A (fp32), H (rows of halves for gemm_cm's CM_HALF_A). Push: M K strideM runsPerRow.
    static let toHalf = KernelFamily(file: "to_half.comp", bindings: [buffer, buffer], pushConstantSize: 4 * 4, axes: [])
    /// Partial sums, Y. Push: count slices.
    static let splitKReduce = KernelFamily(file: "splitk_reduce.comp", bindings: [buffer, buffer],
                                           pushConstantSize: 2 * 4, axes: [])
    /// A, B, Y, C. Push: M N K batchShape[4] aBatchStride[4] bBatchStride[4] aStrideM aStrideK bStrideK bStrideN
    /// alpha beta cStrideM cStrideN aOffset bOffset yBatchStride[4] yStrideM yStrideN yOffset (MatMulPush).
    static let matmul = KernelFamily(file: "matmul.comp", bindings: [buffer, buffer, buffer, buffer],
                                     pushConstantSize: MatMulPush.size, axes: [("MM_TM", ["1", "2"]), ("MM_TN", ["1", "2"])])
    /// Tensor cores (VK_NV_cooperative_matrix), fp16 bundles. A, B, Y, C. Push: the same block as matmul.
    static let matmulCoopmat = KernelFamily(file: "matmul_cm.comp", bindings: [buffer, buffer, buffer, buffer],
                                            pushConstantSize: MatMulPush.size, axes: [])
    /// A, B, Y. Push: count rank shape[6] aStride[6] bStride[6] aOffset bOffset.
    static let binary = KernelFamily(file: "binary.comp", bindings: [buffer, buffer, buffer], pushConstantSize: 22 * 4,
                                     axes: [])
    /// X, Y. Push: count alpha beta.
    static let unary = KernelFamily(file: "unary.comp", bindings: [buffer, buffer], pushConstantSize: 3 * 4, axes: [])
    /// X, Y, Indices. Push: NC inSize[3] outSize[3] kernelSize[3] stride[3] dilation[3] padBegin[3] padEnd[3] C
    /// xStrideN xStrideC xStride[3] xOffset.
    static let pool = KernelFamily(file: "pool.comp", bindings: [buffer, buffer, buffer], pushConstantSize: 29 * 4,
                                   axes: [])
    /// X, Y. Push: NC HW.
    static let globalAvgPool = KernelFamily(file: "global_avgpool.comp", bindings: [buffer, buffer],
                                            pushConstantSize: 2 * 4, axes: [])
    /// X, Y. Push: rows len inner.
    static let softmax = KernelFamily(file: "softmax.comp", bindings: [buffer, buffer], pushConstantSize: 3 * 4,
                                      axes: [])
    /// X overwritten by Y (softmax.comp with SOFTMAX_IN_PLACE). Push: the same as softmax.
    static let softmaxInPlace = KernelFamily(file: "softmax.comp", bindings: [buffer], pushConstantSize: 3 * 4,
                                             axes: [("SOFTMAX_IN_PLACE", ["1"])])
    /// X, params (scale[C] then shift[C]), Y. Push: count C inner.
    static let batchnorm = KernelFamily(file: "batchnorm.comp", bindings: [buffer, buffer, buffer],
                                        pushConstantSize: 3 * 4, axes: [])

    /// Fused attention (LoweringPasses.fuseAttention). Q, K, V, Y, additive mask, select condition. Push: Lq Lk
    /// b1Count, the offsets of Q K V, then strides (b0 b1 row column) of Q K V Y mask cond, scale fill (128 bytes,
    /// Vulkan's guaranteed maxPushConstantsSize).
    static let attention = KernelFamily(file: "attention.comp", bindings: [buffer, buffer, buffer, buffer, buffer, buffer],
                                        pushConstantSize: 32 * 4,
                                        axes: [("ATT_DMAX", ["64", "128"]),
                                               ("ATT_WG", AttentionFusionRule.workgroupSizes.map(String.init))])

    static let all: [KernelFamily] = [conv2d, conv2dIGemm, gemm, gemmTiled, gemmCoopmat, toHalf, splitKReduce, matmul,
                                      matmulCoopmat, binary, unary, pool,
                                      globalAvgPool, softmax, softmaxInPlace, batchnorm, attention]
        + reductionFamilies  // Lowering+Reduce.swift
        + elementwiseFamilies  // Lowering+Elementwise.swift
        + movementFamilies  // Lowering+Movement.swift
        + LoweringContext.recurrentFamilies  // Lowering+Recurrent.swift
        + convTransposeFamilies  // Lowering+ConvTranspose.swift
        + scatterFamilies  // Lowering+Scatter.swift

    /// Every (file, defines) combination the lowering can request, including WEIGHT_FORMAT for both image
    /// formats where the kernel reads a weight image.
    static func allVariants() -> [(file: String, defines: [String: String])] {
        var result: [(file: String, defines: [String: String])] = []
        for family in all {
            var combos: [[String: String]] = [[:]]
            for axis in family.axes {
                combos = combos.flatMap { base in axis.values.map { base.merging([axis.define: $0]) { $1 } } }
            }
            if family.readsWeightImage {
                let layouts = Set(Precision.allCases.map { family.weightFormat($0).glslLayout }).sorted()
                combos = combos.flatMap { base in layouts.map { base.merging(["WEIGHT_FORMAT": $0]) { $1 } } }
            }
            result += combos.map { (family.file, $0) }
        }
        return result
    }
}

/// What a lowering rule asks for: a family, its define values and specialization constants.
struct KernelRequest {
    var family: KernelFamily
    /// Values for the family's axes (WEIGHT_FORMAT is added from the precision).
    var defines: [String: String] = [:]
    /// Specialization constant i (constant_id i) = specConstants[i].
    var specConstants: [UInt32] = []
    var workgroupSize: [UInt32]
    var sharedMemoryBytes: Int = 0
    /// Optional device features the kernel's SPIR-V needs (the bundle declares their union).
    var features: DeviceFeatures = []
}
