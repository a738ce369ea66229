import Foundation
@testable import FlashMemRuntime
import TestSupport

/// A five-step model built by hand, small enough to check on the CPU, shaped to exercise streaming:
///
///     y = ((((x · W0) + c) · W1) + c) · W2        (· is elementwise with the weight's texel components)
///
/// W0 (rgba32f), W1 (rgba16f) and W2 (rgba32f, compressible so its chunks are zstd) are each read by one
/// step, so their lifetimes do not overlap and streaming lets them share pool memory. Every image is cut
/// into four chunks (2 layers × 2 row bands), issued in a shuffled order, W2's chunks late (issue steps
/// 3 and 4). `c` is a resident constant in the arena. Kernel A takes a float spec constant SCALE = 2.
struct TinyModel {
    static let n = 128                // elements of every activation
    static let width: UInt32 = 4, height: UInt32 = 4, layers: UInt32 = 2   // 32 texels = 128 floats
    static let scale: Float = 2

    var bundle: FMBundle
    var payload: [UInt8]
    var weights: [[Float]]            // as the kernels see them (fp16 rounded for W1)
    var constant: [Float]

    static let kernelA = """
    #version 450
    layout(local_size_x = 64) in;
    layout(std430, set = 0, binding = 0) readonly buffer In { float x[]; };
    layout(std430, set = 0, binding = 1) writeonly buffer Out { float y[]; };
    layout(set = 0, binding = 2, FORMAT) readonly uniform image2DArray W;
    layout(push_constant) uniform Push { uint n; uint width; uint height; } pc;
    layout(constant_id = 0) const float SCALE = 1.0;
    void main() {
        uint i = gl_GlobalInvocationID.x;
        if (i >= pc.n) return;
        uint t = i / 4u;
        ivec3 at = ivec3(int(t % pc.width), int((t / pc.width) % pc.height), int(t / (pc.width * pc.height)));
        y[i] = x[i] * imageLoad(W, at)[i % 4u] * SCALE;
    }
    """

    static let kernelB = """
    #version 450
    layout(local_size_x = 64) in;
    layout(std430, set = 0, binding = 0) readonly buffer A { float a[]; };
    layout(std430, set = 0, binding = 1) readonly buffer C { float c[4]; };
    layout(std430, set = 0, binding = 2) writeonly buffer Out { float y[]; };
    layout(push_constant) uniform Push { uint n; } pc;
    void main() {
        uint i = gl_GlobalInvocationID.x;
        if (i < pc.n) y[i] = a[i] + c[i % 4u];
    }
    """

    /// Compiled once per test process (shaderc takes ~0.1 s per module).
    nonisolated(unsafe) private static var compiled: [[UInt32]]?

    static func spirv() throws -> [[UInt32]] {
        if let compiled { return compiled }
        let modules = [
            try GLSLCompiler.compile(kernelA.replacingOccurrences(of: "FORMAT", with: "rgba32f"), name: "a32.comp"),
            try GLSLCompiler.compile(kernelA.replacingOccurrences(of: "FORMAT", with: "rgba16f"), name: "a16.comp"),
            try GLSLCompiler.compile(kernelB, name: "b.comp"),
        ]
        compiled = modules
        return modules
    }

    /// - inputType: the declared dtype of input "x" (the arena always holds fp32).
    /// What the tables need (the format's validator checks the declaration covers them).
    static let requirements = DeviceRequirements(pushConstantBytes: 12, storageBufferRange: 512, imageDimension2D: 4,
                                                 imageArrayLayers: 2, workgroupInvocations: 64, sharedMemoryBytes: 0)

    init(inputType: ElementType = .float32, requirements: DeviceRequirements = TinyModel.requirements) throws {
        let spirv = try TinyModel.spirv()
        let kernels = [
            Kernel(name: "mul_w32", spirv: 0, bindings: [.storageBuffer, .storageBuffer, .storageImage],
                   pushConstantSize: 12, workgroupSize: [64, 1, 1], specConstants: [TinyModel.scale.bitPattern]),
            Kernel(name: "mul_w16", spirv: 1, bindings: [.storageBuffer, .storageBuffer, .storageImage],
                   pushConstantSize: 12, workgroupSize: [64, 1, 1], specConstants: [TinyModel.scale.bitPattern]),
            Kernel(name: "add_c", spirv: 2, bindings: [.storageBuffer, .storageBuffer, .storageBuffer],
                   pushConstantSize: 4, workgroupSize: [64, 1, 1], specConstants: []),
        ]
        var data = PayloadBuilder()
        let constant: [Float] = [0.5, -1, 0.25, 3]
        let constantRange = constant.withUnsafeBytes { data.appendConstant($0) }

        // Tensors: x, t0…t3, y, c at 256-byte slots.
        let bytes = UInt64(TinyModel.n * 4)
        let names = ["x", "t0", "t1", "t2", "t3", "y"]
        var tensors = names.enumerated().map { Tensor(name: $1, offset: UInt64($0) * 512, size: bytes) }
        tensors.append(Tensor(name: "c", offset: 6 * 512, size: 16, constant: constantRange))

        let images = [
            Image(name: "W0", format: .rgba32f, width: TinyModel.width, height: TinyModel.height, layers: TinyModel.layers),
            Image(name: "W1", format: .rgba16f, width: TinyModel.width, height: TinyModel.height, layers: TinyModel.layers),
            Image(name: "W2", format: .rgba32f, width: TinyModel.width, height: TinyModel.height, layers: TinyModel.layers),
        ]
        var rng = SplitMix(seed: 42)
        let w0 = (0..<TinyModel.n).map { _ in rng.float(in: -2...2) }
        let w1 = (0..<TinyModel.n).map { _ in halfToFloat(floatToHalf(rng.float(in: -2...2))) }
        let w2 = (0..<TinyModel.n).map { Float($0 % 4) * 0.5 - 0.75 }   // repetitive: zstd shrinks it
        func texelBytes(_ values: [Float], _ format: ImageFormat) -> [UInt8] {
            format == .rgba32f ? values.withUnsafeBytes { Array($0) }
                : values.map(floatToHalf).withUnsafeBytes { Array($0) }
        }
        // Chunks: per image, layer-major, two row bands per layer.
        var chunks: [Chunk] = []
        for (i, (values, image)) in zip([w0, w1, w2], images).enumerated() {
            let raw = texelBytes(values, image.format)
            let rowBytes = Int(image.width) * image.format.texelBytes
            for layer in 0..<image.layers {
                for band in 0..<UInt32(2) {
                    let y = band * 2
                    let start = (Int(layer * image.height) + Int(y)) * rowBytes
                    let stored = data.appendChunk(Array(raw[start..<(start + 2 * rowBytes)]), codec: i == 2 ? .zstd : .none)
                    chunks.append(Chunk(image: UInt32(i), layer: layer, y: y, rows: 2, stored: stored))
                }
            }
        }
        // Issue order: each image's chunks shuffled among themselves (issue steps never decrease along the
        // order, as the format requires); W1 after step 0, W2 late.
        let order: [UInt32] = [2, 0, 3, 1, 5, 4, 7, 6, 9, 8, 11, 10]
        let issueStep: [UInt32] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4]   // per chunk index

        func push(_ values: [UInt32]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
        let groups: [UInt32] = [UInt32(TinyModel.n / 64), 1, 1]
        let mulPush = push([UInt32(TinyModel.n), TinyModel.width, TinyModel.height])
        let addPush = push([UInt32(TinyModel.n)])
        let program = [
            Step(kernel: 0, groups: groups, bindings: [.tensor(0), .tensor(1), .image(0)], pushConstants: mulPush, label: "mul0"),
            Step(kernel: 2, groups: groups, bindings: [.tensor(1), .tensor(6), .tensor(2)], pushConstants: addPush, label: "add0"),
            Step(kernel: 1, groups: groups, bindings: [.tensor(2), .tensor(3), .image(1)], pushConstants: mulPush, label: "mul1"),
            Step(kernel: 2, groups: groups, bindings: [.tensor(3), .tensor(6), .tensor(4)], pushConstants: addPush, label: "add1"),
            Step(kernel: 0, groups: groups, bindings: [.tensor(4), .tensor(5), .image(2)], pushConstants: mulPush, label: "mul2"),
        ]
        let schedule = Schedule(order: order, issueStep: issueStep, firstUse: [0, 2, 4], lastUse: [0, 2, 4],
                                budgetBytes: 0, bandwidth: 1e9, stepSeconds: [1e-4, 1e-4, 1e-4, 1e-4, 1e-4],
                                predictedSeconds: 5e-4, lowerBoundSeconds: 5e-4)
        let shape: [Int64] = [2, 64]
        let meta = Meta(modelName: "tiny", producer: "FlashMemRuntimeTests",
                        inputs: [IOBinding(name: "x", elementType: inputType, shape: shape, tensor: 0)],
                        outputs: [IOBinding(name: "y", elementType: .float32, shape: shape, tensor: 5)],
                        requirements: requirements, arenaSize: 7 * 512)
        bundle = FMBundle(meta: meta, spirv: spirv, kernels: kernels, program: program, tensors: tensors,
                          images: images, chunks: chunks, schedule: schedule)
        bundle.placement = try TinyModel.streamedPlacement(bundle)
        payload = data.bytes
        weights = [w0, w1, w2]
        self.constant = constant
    }

    /// Every image streamed, slots shared by images whose windows do not overlap (what fmc plans under a budget).
    static func streamedPlacement(_ bundle: FMBundle, resident: [Bool]? = nil) throws -> Placement {
        let sizes = bundle.images.map { alignUp($0.byteSize, 256) }
        let resident = resident ?? bundle.images.map { _ in false }
        let placed = try SlotPlacement.place(sizes: sizes, alignments: sizes.map { _ in 256 }, resident: resident,
                                             windows: bundle.imageWindows(), segmentBytes: 1 << 30)
        return Placement(weightSpaceBytes: placed.end, segmentBytes: 1 << 30, slotAlignment: 256, method: .heuristic,
                         slots: sizes.indices.map { Placement.Slot(resident: resident[$0], offset: placed.offsets[$0], size: sizes[$0]) })
    }

    func loaded() -> LoadedBundle { LoadedBundle(bundle: bundle, payload: payload, path: "tiny.fmb") }

    /// The model on the CPU, in the same order of operations as the kernels.
    func reference(_ x: [Float]) -> [Float] {
        var v = x
        for (step, w) in weights.enumerated() {
            v = (0..<TinyModel.n).map { v[$0] * w[$0] * TinyModel.scale }
            if step < 2 { v = (0..<TinyModel.n).map { v[$0] + constant[$0 % 4] } }
        }
        return v
    }
}

