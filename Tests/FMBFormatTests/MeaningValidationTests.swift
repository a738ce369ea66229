// Every meaning rule and every payload-range structure rule, each broken once on the valid tiny bundle; the
// issue must name the path of the broken field. Also: a broken bundle is rejected by the reader.

import FMBFormat
import XCTest

final class MeaningValidationTests: XCTestCase {
    struct Case {
        var name: String
        var path: String
        var fragment: String
        var pass: FormatIssue.Pass = .meaning
        var edit: (inout FMBundle) -> Void
    }

    static let cases: [Case] = [
        // Meta
        Case(name: "input tensor out of range", path: "meta.inputs[0].tensor", fragment: "tensor 9 out of range (4 tensors)") {
            $0.meta.inputs[0].tensor = 9
        },
        Case(name: "output tensor too small for shape", path: "meta.outputs[0].tensor", fragment: "needs 64") {
            $0.meta.outputs[0].shape = [2, 8]
        },
        Case(name: "dynamic dimension", path: "meta.inputs[0].shape[0]", fragment: "not static") {
            $0.meta.inputs[0].shape = [-1, 16]
        },
        Case(name: "duplicate input name", path: "meta.inputs[1].name", fragment: "duplicate name 'x'") {
            $0.meta.inputs.append($0.meta.inputs[0])
        },
        Case(name: "empty output name", path: "meta.outputs[0].name", fragment: "empty name") {
            $0.meta.outputs[0].name = ""
        },
        // SPIR-V and kernels
        Case(name: "bad SPIR-V magic", path: "spirv[1]", fragment: "expected 0x07230203") {
            $0.spirv[1][0] = 0xDEAD_BEEF
        },
        Case(name: "SPIR-V too short", path: "spirv[0]", fragment: "too short") { $0.spirv[0] = [0x0723_0203, 1] },
        Case(name: "kernel spirv out of range", path: "kernels[1].spirv", fragment: "spirv module 5 out of range") {
            $0.kernels[1].spirv = 5
        },
        Case(name: "workgroup with 2 entries", path: "kernels[0].workgroupSize", fragment: "expected 3") {
            $0.kernels[0].workgroupSize = [8, 8]
        },
        Case(name: "zero workgroup dimension", path: "kernels[1].workgroupSize", fragment: "zero dimension") {
            $0.kernels[1].workgroupSize = [64, 0, 1]
        },
        Case(name: "push constant size not multiple of 4", path: "kernels[1].pushConstantSize",
             fragment: "multiple of 4") {
            $0.kernels[1].pushConstantSize = 6
            $0.program[1].pushConstants = [0, 0, 0, 0, 0, 0]
        },
        // Program
        Case(name: "step kernel out of range", path: "program[2].kernel", fragment: "kernel 2 out of range") {
            $0.program[2].kernel = 2
        },
        Case(name: "zero groups", path: "program[1].groups", fragment: "zero group count") {
            $0.program[1].groups = [1, 0, 1]
        },
        Case(name: "groups with 4 entries", path: "program[1].groups", fragment: "expected 3") {
            $0.program[1].groups = [1, 1, 1, 1]
        },
        Case(name: "binding count mismatch", path: "program[0].bindings",
             fragment: "2 bindings, kernels[0] ('matmul_rgba32f') declares 3") {
            $0.program[0].bindings.removeLast()
        },
        Case(name: "tensor bound to image binding", path: "program[0].bindings[1]",
             fragment: "binds a tensor, but binding 1 of kernels[0] ('matmul_rgba32f') is a storage image") {
            $0.program[0].bindings[1] = .tensor(1)
        },
        Case(name: "image bound to buffer binding", path: "program[1].bindings[2]",
             fragment: "binds an image, but binding 2") {
            $0.program[1].bindings[2] = .image(0)
        },
        Case(name: "tensor ordinal out of range", path: "program[1].bindings[0]", fragment: "tensor 4 out of range") {
            $0.program[1].bindings[0] = .tensor(4)
        },
        Case(name: "image ordinal out of range", path: "program[2].bindings[1]", fragment: "image 7 out of range") {
            $0.program[2].bindings[1] = .image(7)
        },
        Case(name: "empty bound tensor", path: "program[0].bindings[2]", fragment: "is empty") {
            $0.tensors[1].size = 0
        },
        Case(name: "push constant bytes mismatch", path: "program[1].pushConstants",
             fragment: "3 bytes, kernels[1] ('add') declares 4") {
            $0.program[1].pushConstants = [1, 2, 3]
        },
        // Tensors and images
        Case(name: "tensor past arena", path: "tensors[3]", fragment: "outside the arena") {
            $0.tensors[3].size = 512
        },
        Case(name: "tensor offset overflow", path: "tensors[3]", fragment: "outside the arena") {
            $0.tensors[3].offset = UInt64.max - 255
        },
        Case(name: "tensor offset unaligned", path: "tensors[1].offset", fragment: "not a multiple of 256") {
            $0.tensors[1].offset = 128
        },
        Case(name: "constant larger than tensor", path: "tensors[2].constant.size", fragment: "do not fit") {
            $0.tensors[2].size = 32
        },
        Case(name: "zero image extent", path: "images[1]", fragment: "zero dimension") { $0.images[1].layers = 0 },
        // Sizes that sums in readers (arena + weights) would overflow: found by Fuzz/.
        Case(name: "arena beyond 1 PiB", path: "meta.arenaSize", fragment: "exceeds the 1125899906842624-byte limit") {
            $0.meta.arenaSize = UInt64.max
        },
        Case(name: "image extent beyond 65536", path: "images[0]", fragment: "exceeds 65536 in a dimension") {
            $0.images[0].layers = 1 << 17
        },
        // Chunks
        Case(name: "chunk image out of range", path: "chunks[3].image", fragment: "image 2 out of range") {
            $0.chunks[3].image = 2
        },
        Case(name: "chunk layer out of range", path: "chunks[2].layer", fragment: "has 2 layers") {
            $0.chunks[2].layer = 2
        },
        Case(name: "chunk rows past height", path: "chunks[2].rows", fragment: "extend past the height 8") {
            $0.chunks[2].y = 6
        },
        Case(name: "zero rows", path: "chunks[0].rows", fragment: "zero rows") { $0.chunks[0].rows = 0 },
        Case(name: "raw size mismatch", path: "chunks[3].rawSize", fragment: "expected rows × width × texelBytes") {
            $0.chunks[3].rawSize = 512
        },
        Case(name: "none payload size differs from raw", path: "chunks[0].payload.size",
             fragment: "stored without a codec") {
            $0.chunks[0].payload.size = 100
        },
        Case(name: "empty zstd payload", path: "chunks[1].payload.size", fragment: "empty zstd payload") {
            $0.chunks[1].payload.size = 0
        },
        Case(name: "chunks overlap", path: "chunks[2]", fragment: "overlap chunks[1]") {
            $0.chunks[2].y = 3
            $0.chunks[2].rows = 5
            $0.chunks[2].rawSize = 5 * 64
            $0.chunks[2].payload.size = 5 * 64
        },
        Case(name: "rows not loaded", path: "images[0]", fragment: "first: layer 1 rows 4..<8") {
            $0.chunks.remove(at: 2)
            $0.schedule.order = [0, 1, 2]
            $0.schedule.issueStep = [0, 0, 1]
        },
        Case(name: "a billion uncovered layers", path: "images[1]",
             fragment: "999999999 row range(s) not loaded by any chunk, first: layer 1 rows 0..<4") {
            $0.images[1].layers = 1_000_000_000
        },
        Case(name: "chunk too large", path: "chunks[1].rawSize", fragment: "limit on one chunk") {
            $0.images[0].width = 1 << 24
            $0.images[0].height = 1 << 8
            $0.chunks[1].rows = 1 << 8
            $0.chunks[1].rawSize = UInt64(1 << 24) * (1 << 8) * 16
        },
        // Schedule
        Case(name: "order too short", path: "schedule.order", fragment: "3 entries, expected 4") {
            $0.schedule.order.removeLast()
        },
        Case(name: "order entry out of range", path: "schedule.order[3]", fragment: "chunk 4 out of range") {
            $0.schedule.order[3] = 4
        },
        Case(name: "order not a permutation", path: "schedule.order[3]",
             fragment: "chunk 0 appears twice (also schedule.order[0])") {
            $0.schedule.order[3] = 0
        },
        Case(name: "issueStep length", path: "schedule.issueStep", fragment: "expected 4 (one per chunk)") {
            $0.schedule.issueStep.append(0)
        },
        Case(name: "issueStep past the program", path: "schedule.issueStep[3]", fragment: "past the last step") {
            $0.schedule.issueStep[3] = 4
        },
        Case(name: "issueStep after first use", path: "schedule.issueStep[3]", fragment: "first used by step 2") {
            $0.schedule.issueStep[3] = 3
        },
        Case(name: "issueStep decreases along order", path: "schedule.order[3]",
             fragment: "issue steps must not decrease") {
            $0.schedule.issueStep = [0, 0, 1, 0]
            $0.schedule.order = [0, 1, 2, 3]
            $0.schedule.firstUse = [2, 2]
            $0.schedule.lastUse = [2, 2]
        },
        Case(name: "firstUse length", path: "schedule.firstUse", fragment: "expected 2 (one per image)") {
            $0.schedule.firstUse = [0]
        },
        Case(name: "lastUse length", path: "schedule.lastUse", fragment: "expected 2 (one per image)") {
            $0.schedule.lastUse = [0, 2, 2]
        },
        Case(name: "firstUse after a binding step", path: "schedule.firstUse[1]",
             fragment: "program[0] already binds images[1]") {
            $0.program[0].bindings[1] = .image(1)
            $0.schedule.issueStep[3] = 0
        },
        Case(name: "lastUse before a binding step", path: "schedule.lastUse[0]",
             fragment: "program[2] still binds images[0]") {
            $0.program[2].bindings[1] = .image(0)
        },
        Case(name: "uses not in order", path: "schedule.firstUse[0]", fragment: "not steps in order") {
            $0.schedule.lastUse[0] = 5
        },
        Case(name: "stepSeconds length", path: "schedule.stepSeconds", fragment: "expected 3 (one per step)") {
            $0.schedule.stepSeconds = [1]
        },
        Case(name: "negative step time", path: "schedule.stepSeconds[1]", fragment: "not a finite time") {
            $0.schedule.stepSeconds[1] = -1
        },
        Case(name: "NaN bandwidth", path: "schedule.bandwidth", fragment: "not a finite value") {
            $0.schedule.bandwidth = .nan
        },
        // Requirements
        Case(name: "push constant requirement too low", path: "meta.requirements.pushConstantBytes",
             fragment: "8, but kernels[0] ('matmul_rgba32f') needs 16") {
            $0.meta.requirements.pushConstantBytes = 8
        },
        Case(name: "storage range requirement too low", path: "meta.requirements.storageBufferRange",
             fragment: "bound by program[0]") {
            $0.meta.requirements.storageBufferRange = 16
        },
        Case(name: "image dimension requirement too low", path: "meta.requirements.imageDimension2D",
             fragment: "needs 8") {
            $0.meta.requirements.imageDimension2D = 4
        },
        Case(name: "layers requirement too low", path: "meta.requirements.imageArrayLayers",
             fragment: "images[0] ('fc1.weight') needs 2") {
            $0.meta.requirements.imageArrayLayers = 1
        },
        Case(name: "invocations requirement too low", path: "meta.requirements.workgroupInvocations",
             fragment: "kernels[0] ('matmul_rgba32f') needs 64") {
            $0.meta.requirements.workgroupInvocations = 32
        },
        // Structure rules on decoded tables (payload ranges)
        Case(name: "chunk payload unaligned", path: "chunks[2].payload.offset", fragment: "not a multiple of 4096",
             pass: .structure) {
            $0.chunks[2].payload.offset += 16
        },
        Case(name: "chunk payload outside data", path: "chunks[3].payload", fragment: "outside the data section",
             pass: .structure) {
            $0.chunks[3].payload.offset = 1 << 20
        },
        Case(name: "chunk payload range overflows", path: "chunks[3].payload", fragment: "outside the data section",
             pass: .structure) {
            $0.chunks[3].payload.offset = UInt64.max - 4095
        },
        Case(name: "constant outside data", path: "tensors[2].constant", fragment: "outside the data section",
             pass: .structure) {
            $0.tensors[2].constant!.size = 1 << 20
        },
    ]

    func testTheFixtureIsValid() {
        let (bundle, payload) = Fixtures.tiny()
        XCTAssertEqual(BundleValidator.validate(bundle, dataSize: UInt64(payload.count)), [])
    }

    func testEveryRuleFailsWithItsPath() {
        let (valid, payload) = Fixtures.tiny()
        for c in Self.cases {
            var bundle = valid
            c.edit(&bundle)
            let issues = BundleValidator.validate(bundle, dataSize: UInt64(payload.count))
            XCTAssertFalse(issues.isEmpty, "\(c.name): accepted")
            let match = issues.contains { $0.path == c.path && $0.message.contains(c.fragment) && $0.pass == c.pass }
            XCTAssertTrue(match, "\(c.name): no \(c.pass) issue at \(c.path) containing '\(c.fragment)'; got:\n"
                          + issues.map { "  \($0.pass): \($0)" }.joined(separator: "\n"))
        }
    }

    /// The same broken bundles, written without validation, are rejected by the reader with the same issue.
    func testReaderRejectsWhatTheValidatorRejects() throws {
        let (valid, payload) = Fixtures.tiny()
        for c in Self.cases {
            var bundle = valid
            c.edit(&bundle)
            // Fields the file stores with a fixed width (3 group counts) cannot carry the error into a file.
            if c.name == "workgroup with 2 entries" || c.name == "groups with 4 entries" { continue }
            let file = try BundleWriter.serialize(bundle, payload: payload, validate: false)
            let issues = parseIssues(file)
            XCTAssertTrue(issues.contains { $0.path == c.path && $0.message.contains(c.fragment) },
                          "\(c.name): got \(issues)")
        }
    }

    func testStructureIssuesStopBeforeMeaning() {
        var (bundle, payload) = Fixtures.tiny()
        bundle.chunks[0].payload.offset = 1 << 30  // structure
        bundle.program[0].kernel = 99  // meaning
        let issues = BundleValidator.validate(bundle, dataSize: UInt64(payload.count))
        XCTAssertEqual(issues.map(\.pass), [.structure])
    }

    func testErrorDescriptionListsEveryIssue() {
        var (bundle, payload) = Fixtures.tiny()
        bundle.program[0].kernel = 99
        bundle.tensors[1].offset = 100
        XCTAssertThrowsError(try BundleWriter.serialize(bundle, payload: payload)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("program[0].kernel: kernel 99 out of range (2 kernels)"), text)
            XCTAssertTrue(text.contains("tensors[1].offset: 100 is not a multiple of 256"), text)
        }
    }
}
