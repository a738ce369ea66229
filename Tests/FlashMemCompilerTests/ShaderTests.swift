// Every kernel variant the lowering can request compiles with shaderc (both weight formats), and its
// SPIR-V interface (bindings, push-constant block size, spec constants) matches KernelCatalog.

import FMBFormat
import XCTest
@testable import FlashMemCompiler

final class ShaderTests: XCTestCase {
    func testEveryVariantCompilesAndMatchesTheCatalog() throws {
        let compiler = try ShaderCompiler()
        let variants = KernelCatalog.allVariants()
        XCTAssertGreaterThanOrEqual(variants.count, 20)
        for (file, defines) in variants {
            let spirv = try compiler.compile(file, defines: defines)
            XCTAssertEqual(spirv.first, 0x0723_0203, "\(file) \(defines): not SPIR-V")
            // The family of this variant: its file, and its axes' defines (softmax.comp is two: in place or not).
            let family = try XCTUnwrap(KernelCatalog.all.first {
                $0.file == file && Set($0.axes.map(\.define)) == Set(defines.keys).subtracting(["WEIGHT_FORMAT"])
            })
            let reflection = try SPIRVReflection(spirv)
            XCTAssertEqual(reflection.bindings.keys.sorted(), Array(family.bindings.indices), "\(file): bindings")
            for (i, kind) in family.bindings.enumerated() {
                XCTAssertEqual(reflection.bindings[i], kind, "\(file): binding \(i)")
            }
            XCTAssertEqual(reflection.pushConstantSize, family.pushConstantSize, "\(file): push-constant block size")
            XCTAssertTrue(reflection.descriptorSets.allSatisfy { $0 == 0 }, "\(file): descriptor set 0 only")
        }
    }

    func testWeightFormatSelectsTheImageFormat() throws {
        let compiler = try ShaderCompiler()
        let f32 = try SPIRVReflection(compiler.compile("gemm.comp", defines: ["WEIGHT_FORMAT": "rgba32f"]))
        let f16 = try SPIRVReflection(compiler.compile("gemm.comp", defines: ["WEIGHT_FORMAT": "rgba16f"]))
        XCTAssertEqual(f32.imageFormats, [1])  // ImageFormatRgba32f
        XCTAssertEqual(f16.imageFormats, [2])  // ImageFormatRgba16f
    }

    func testSpecializationConstantIdsAreDense() throws {
        let compiler = try ShaderCompiler()
        let expected: [String: Int] = [
            "conv2d.comp": 2, "conv2d_igemm.comp": 1, "gemm.comp": 3, "gemm_tiled.comp": 2, "gemm_cm.comp": 2, "to_half.comp": 1, "splitk_reduce.comp": 2, "matmul.comp": 2, "matmul_cm.comp": 2, "binary.comp": 5, "unary.comp": 3, "where.comp": 1,
            "pool.comp": 4, "global_avgpool.comp": 1, "softmax.comp": 2, "batchnorm.comp": 2,
            "reduce.comp": 3, "argmax.comp": 4, "cumsum.comp": 4, "normalize.comp": 3,  // normalization / reduction
            "copy_strided.comp": 1, "gather.comp": 1, "gather_image.comp": 1, "pad.comp": 3, "trilu.comp": 2, "resize.comp": 2,  // movement
            "conv_transpose.comp": 2,
            "lstm_step.comp": 1,  // recurrent
            "scatter_nd.comp": 2, "onehot.comp": 1,  // scatter
            "attention.comp": 5,
        ]
        for family in KernelCatalog.all {
            let defines = family.readsWeightImage ? ["WEIGHT_FORMAT": family.weightFormat(.fp32).glslLayout] : [:]
            let ids = try SPIRVReflection(compiler.compile(family.file, defines: defines)).specIds
            XCTAssertEqual(ids, Array(0..<(expected[family.file] ?? -1)), family.file)
        }
    }

    func testCompileErrorNamesShaderAndDefines() throws {
        let compiler = try ShaderCompiler(sources: [
            "bad.comp": "#version 450\nlayout(local_size_x = 1) in;\nvoid main() { undefined_thing = 1; }\n",
            "warn.comp": "#version 450\n#extension GL_EXT_nonexistent_thing : warn\nlayout(local_size_x = 1) in;\nvoid main() {}\n",
            "incl.comp": "#version 450\n#include \"missing.glsl\"\nlayout(local_size_x = 1) in;\nvoid main() {}\n",
        ])
        XCTAssertThrowsError(try compiler.compile("bad.comp", defines: ["X": "1"])) { error in
            let e = error as? ShaderCompileError
            XCTAssertEqual(e?.shader, "bad.comp")
            XCTAssertEqual(e?.defines, ["X": "1"])
            XCTAssertTrue(e?.message.contains("undefined_thing") ?? false, "\(error)")
            XCTAssertTrue("\(error)".contains("-DX=1"), "\(error)")
        }
        XCTAssertThrowsError(try compiler.compile("warn.comp"), "warnings are errors")
        XCTAssertThrowsError(try compiler.compile("incl.comp")) { error in
            XCTAssertTrue("\(error)".contains("missing.glsl"), "\(error)")
        }
        XCTAssertThrowsError(try compiler.compile("nope.comp")) { error in
            XCTAssertEqual((error as? ShaderCompileError)?.shader, "nope.comp")
        }
    }

    func testVariantsAreCachedPerDefines() throws {
        let compiler = try ShaderCompiler()
        let a = try compiler.compile("conv2d.comp", defines: ["WEIGHT_FORMAT": "rgba32f", "CONV_PIX": "1"])
        let b = try compiler.compile("conv2d.comp", defines: ["WEIGHT_FORMAT": "rgba32f", "CONV_PIX": "1"])
        let c = try compiler.compile("conv2d.comp", defines: ["WEIGHT_FORMAT": "rgba32f", "CONV_PIX": "4"])
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
    }
}

/// Just enough SPIR-V reflection to check a kernel's interface against KernelCatalog.
struct SPIRVReflection {
    var bindings: [Int: BindingKind] = [:]
    var descriptorSets: [Int] = []
    var pushConstantSize = 0
    var specIds: [Int] = []
    var imageFormats: [Int] = []

    struct Malformed: Error {}

    init(_ words: [UInt32]) throws {
        guard words.count > 5, words[0] == 0x0723_0203 else { throw Malformed() }
        var bindingOf: [UInt32: Int] = [:], setOf: [UInt32: Int] = [:]
        var memberOffsets: [UInt32: [Int: Int]] = [:]
        var types: [UInt32: [UInt32]] = [:]  // result id → instruction words
        var constants: [UInt32: UInt32] = [:]
        var variables: [(type: UInt32, storage: UInt32, id: UInt32)] = []
        var specIds: [Int] = []
        var i = 5
        while i < words.count {
            let count = Int(words[i] >> 16), opcode = words[i] & 0xffff
            guard count > 0, i + count <= words.count else { throw Malformed() }
            let inst = Array(words[i..<(i + count)])
            switch opcode {
            case 71 where inst[2] == 33: bindingOf[inst[1]] = Int(inst[3])           // OpDecorate Binding
            case 71 where inst[2] == 34: setOf[inst[1]] = Int(inst[3])               // DescriptorSet
            case 71 where inst[2] == 1: specIds.append(Int(inst[3]))                 // SpecId
            case 72 where inst[3] == 35: memberOffsets[inst[1], default: [:]][Int(inst[2])] = Int(inst[4])
            case 19...33: types[inst[1]] = inst                                      // OpType*
            case 43, 50: constants[inst[2]] = inst[3]                                // OpConstant, OpSpecConstant
            case 59: variables.append((inst[1], inst[3], inst[2]))                   // OpVariable
            default: break
            }
            i += count
        }
        self.specIds = specIds.sorted()
        func pointee(_ pointer: UInt32) -> [UInt32]? {
            guard let p = types[pointer], p[0] & 0xffff == 32 else { return nil }  // OpTypePointer
            return types[p[3]]
        }
        func size(of type: UInt32) -> Int {
            guard let t = types[type] else { return 0 }
            switch t[0] & 0xffff {
            case 21, 22: return Int(t[2]) / 8                                         // int, float
            case 23: return Int(t[3]) * size(of: t[2])                                // vector
            case 28: return Int(constants[t[3]] ?? 0) * size(of: t[2])                // array
            default: return 0
            }
        }
        for v in variables {
            if v.storage == 9, let block = pointee(v.type) {                           // PushConstant
                let members = Array(block.dropFirst(2))
                let offsets = memberOffsets[block[1]] ?? [:]
                pushConstantSize = members.indices.map { (offsets[$0] ?? 0) + size(of: members[$0]) }.max() ?? 0
            }
            guard let binding = bindingOf[v.id], var type = pointee(v.type) else { continue }
            descriptorSets.append(setOf[v.id] ?? -1)
            if type[0] & 0xffff == 25 {                                                 // OpTypeImage
                bindings[binding] = .storageImage
                imageFormats.append(Int(type[8]))
            } else {
                if type[0] & 0xffff == 29, let inner = types[type[2]] { type = inner } // runtime array wrapper
                bindings[binding] = .storageBuffer
            }
        }
    }
}
