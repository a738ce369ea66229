// The arena's placement: tensors whose lifetimes overlap never share bytes, and the arena reaches the live peak
// where a largest-first placement does not (Depth Anything L's head, in miniature).

import FMBFormat
import XCTest
@testable import FlashMemCompiler

final class ArenaPlannerTests: XCTestCase {
    /// A chain of steps, each reading the previous step's tensor and writing the next: `sizes` in KiB, the first
    /// tensor the graph input and the last its output (both live throughout).
    private func chain(_ sizes: [Int]) -> LoweredProgram {
        var program = LoweredProgram()
        program.kernels = [KernelSpec(name: "k", spirv: [0x0723_0203], bindings: [.storageBuffer, .storageBuffer],
                                      pushConstantSize: 0, workgroupSize: [1, 1, 1])]
        let names = sizes.indices.map { "t\($0)" }
        for (name, kib) in zip(names, sizes) { program.tensors[name] = ArenaTensor(name: name, byteSize: kib << 10) }
        program.steps = names.indices.dropLast().map { k in
            LoweredStep(kernel: 0, groups: [1, 1, 1], bindings: [.tensor(names[k]), .tensor(names[k + 1])],
                        pushConstants: [], label: "s\(k)")
        }
        program.inputs = [IOBinding(name: names[0], elementType: .float32, shape: [Int64(sizes[0] << 8)], tensor: 0)]
        program.outputs = [IOBinding(name: names.last!, elementType: .float32, shape: [Int64(sizes.last! << 8)], tensor: 0)]
        return program
    }

    func testTheHeadOfDepthAnythingLPacksToItsLivePeak() throws {
        // input 9 → 85 → 85 → 43 → 131 → 33 → output 1 (KiB): the peak is 43 + 131 + 10 at the fourth step. Largest
        // first puts the 131 at 0, the two 85s one above the other, so the 43 that meets both lands at 170 and the
        // arena is 223 KiB; placing the peak's tensors first packs the rest around them.
        let program = chain([9, 85, 85, 43, 131, 33, 1])
        let plan = try ArenaPlanner.plan(program) { _ in DataRange(offset: 0, size: 0) }
        XCTAssertEqual(plan.livePeakSize, 184 << 10)
        XCTAssertEqual(plan.arenaSize, plan.livePeakSize)
        let size = { (name: String) in UInt64(program.tensors[name]!.byteSize) }
        let largestFirst = program.tensors.keys.sorted { size($0) != size($1) ? size($0) > size($1) : $0 < $1 }
        let bySize = ArenaPlanner.place(largestFirst, size: size) { name in
            let k = Int(name.dropFirst())!
            return k == 0 || k == 6 ? (-1, 6) : (k - 1, k)
        }
        XCTAssertEqual(bySize.size, 223 << 10, "largest first alone")

        // Whatever the placement, tensors live at one step never share bytes.
        let offsets = Dictionary(uniqueKeysWithValues: plan.tensors.map { ($0.name, ($0.offset, $0.size)) })
        for k in 0..<7 {
            for j in (k + 1)..<7 where j - k <= 1 || k == 0 || j == 6 {
                let (a, b) = (offsets["t\(k)"]!, offsets["t\(j)"]!)
                XCTAssertTrue(a.0 + a.1 <= b.0 || b.0 + b.1 <= a.0, "t\(k) \(a) overlaps t\(j) \(b)")
            }
        }
    }
}
