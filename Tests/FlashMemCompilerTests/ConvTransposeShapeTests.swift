// ConvTranspose: shape inference (every expected shape and error checked against onnxruntime 1.32), the stride
// phases' taps and the weight packing conv_transpose.comp reads. Owned by the ConvTranspose work.

@testable import FlashMemCompiler
import XCTest
import TestSupport

final class ConvTransposeShapeTests: XCTestCase {
    typealias G = TestGraphs

    private func node(_ attributes: [String: Attribute], bias: Bool = false) -> Node {
        Node(name: "n_ct", opType: "ConvTranspose", inputs: bias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"],
             attributes: attributes)
    }

    private func infer(x: [Int], w: [Int], _ attributes: [String: Attribute] = [:], bias: [Int]? = nil) throws -> [Int] {
        var initializers = ["w": G.zeros(w)]
        if let bias { initializers["b"] = G.zeros(bias) }
        return try G.inferOne(node(attributes, bias: bias != nil), inputs: [("x", x)], initializers: initializers)[0]
    }

    // MARK: - Shapes

    func testPlainStridedGroupedAnd1D() throws {
        XCTAssertEqual(try infer(x: [1, 1, 3, 3], w: [1, 2, 3, 3]), [1, 2, 5, 5])
        // PP-OCR's upsampler.
        XCTAssertEqual(try infer(x: [1, 24, 160, 160], w: [24, 24, 2, 2], ["strides": .ints([2, 2]),
                                                                           "kernel_shape": .ints([2, 2])]),
                       [1, 24, 320, 320])
        // M = W[1] · group.
        XCTAssertEqual(try infer(x: [1, 6, 9, 8], w: [6, 5, 3, 3], ["group": .int(3), "strides": .ints([2, 2]),
                                                                    "pads": .ints([1, 1, 1, 1])], bias: [15]),
                       [1, 15, 17, 15])
        XCTAssertEqual(try infer(x: [1, 2, 7, 6], w: [2, 3, 3, 2], [
            "strides": .ints([2, 3]), "dilations": .ints([2, 1]), "pads": .ints([1, 0, 2, 1]),
            "output_padding": .ints([1, 2]),
        ]), [1, 3, 15, 18])
        XCTAssertEqual(try infer(x: [2, 3, 11], w: [3, 4, 5], ["strides": .ints([3]), "dilations": .ints([2]),
                                                               "output_padding": .ints([1]), "pads": .ints([2, 1])]),
                       [2, 4, 37])
        // Shape inference takes any rank (the lowering takes up to 3-D).
        XCTAssertEqual(try infer(x: [1, 1, 3, 4, 5], w: [1, 2, 3, 3, 3]), [1, 2, 5, 6, 7])
    }

    func testAutoPadAndOutputShape() throws {
        let x = [1, 3, 5, 7], w = [3, 2, 3, 4]
        for autoPad in ["SAME_UPPER", "SAME_LOWER"] {
            XCTAssertEqual(try infer(x: x, w: w, ["strides": .ints([2, 2]), "auto_pad": .string(autoPad)]), [1, 2, 10, 14])
        }
        XCTAssertEqual(try infer(x: x, w: w, ["strides": .ints([2, 2]), "auto_pad": .string("VALID")]), [1, 2, 11, 16])
        // SAME never grows the result: kernel 1, stride 3 spans 10 < 12 positions and keeps them.
        XCTAssertEqual(try infer(x: [1, 1, 4, 4], w: [1, 1, 1, 1], ["strides": .ints([3, 3]),
                                                                    "auto_pad": .string("SAME_UPPER")]),
                       [1, 1, 10, 10])
        // output_shape up to stride − 1 past the 15 × 9 result.
        XCTAssertEqual(try infer(x: [1, 2, 5, 4], w: [2, 3, 3, 3], ["strides": .ints([3, 2]),
                                                                    "output_shape": .ints([16, 6])]),
                       [1, 3, 16, 6])
    }

    func testGeometryResolvesPads() throws {
        let attributes: [String: Attribute] = ["strides": .ints([3, 2]), "output_shape": .ints([16, 6])]
        let notset = try TransposedWindowGeometry(node: node(attributes), input: [5, 4], kernel: [3, 3])
        XCTAssertEqual(notset.padsBegin, [0, 2])  // W: total 3, the odd unit at the beginning
        XCTAssertEqual(notset.padsEnd, [0, 1])
        XCTAssertEqual(notset.output, [16, 6])
        var upper = attributes
        upper["auto_pad"] = .string("SAME_UPPER")
        let sameUpper = try TransposedWindowGeometry(node: node(upper), input: [5, 4], kernel: [3, 3])
        XCTAssertEqual(sameUpper.padsBegin, [0, 1])
        XCTAssertEqual(sameUpper.padsEnd, [0, 2])
        let lower = try TransposedWindowGeometry(node: node(["strides": .ints([2, 2]), "auto_pad": .string("SAME_LOWER")]),
                                                 input: [5, 7], kernel: [3, 4])
        XCTAssertEqual(lower.padsBegin, [1, 1])
        XCTAssertEqual(lower.padsEnd, [0, 1])
        XCTAssertEqual(lower.output, [10, 14])
    }

    func testErrorsNameTheProblem() {
        func message(x: [Int], w: [Int], _ attributes: [String: Attribute], bias: [Int]? = nil) -> String {
            let error = compileError { _ = try self.infer(x: x, w: w, attributes, bias: bias) }
            XCTAssertEqual(error?.node, "n_ct")
            XCTAssertEqual(error?.op, "ConvTranspose")
            return error?.message ?? ""
        }
        XCTAssertTrue(message(x: [1, 1, 3, 3], w: [1, 1, 3, 3], ["strides": .ints([2, 2]), "output_padding": .ints([2, 0])])
            .contains("output_padding"))
        XCTAssertTrue(message(x: [1, 2, 5, 4], w: [2, 3, 3, 3], ["strides": .ints([3, 2]), "output_shape": .ints([18, 6])])
            .contains("does not fit"))
        XCTAssertTrue(message(x: [1, 1, 2, 2], w: [1, 1, 2, 2], ["pads": .ints([2, 0, 1, 0])]).contains("empty"))
        XCTAssertTrue(message(x: [1, 3, 4, 4], w: [2, 1, 3, 3], [:]).contains("channels"))
        XCTAssertTrue(message(x: [1, 1, 4, 4], w: [1, 1, 3, 3], ["kernel_shape": .ints([2, 2])]).contains("kernel_shape"))
        XCTAssertTrue(message(x: [1, 1, 4, 4], w: [1, 2, 3, 3], [:], bias: [3]).contains("B [3] must be [2]"))
    }

    // MARK: - Phases and packing

    func testPhaseTapsCoverTheKernelOnce() {
        for (kernel, stride, dilation, pad) in [(2, 2, 1, 0), (3, 2, 1, 1), (3, 2, 2, 1), (5, 3, 2, 2), (4, 6, 4, 3), (1, 3, 1, 0)] {
            var seen = [Int](repeating: 0, count: kernel)
            for r in 0..<stride {
                let taps = WeightPacking.TransposedTaps(phase: r, pad: pad, kernel: kernel, stride: stride, dilation: dilation)
                for t in 0..<taps.count {
                    let k = taps.first + t * taps.step
                    XCTAssertEqual((r + pad - k * dilation + 64 * stride) % stride, 0, "tap \(k) does not reach phase \(r)")
                    seen[k] += 1
                }
            }
            XCTAssertEqual(seen, [Int](repeating: 1, count: kernel), "kernel \(kernel) stride \(stride) dilation \(dilation)")
        }
        // Stride 2, dilation 2: every tap reaches the same parity; the other phase has none.
        let odd = WeightPacking.TransposedTaps(phase: 0, pad: 1, kernel: 3, stride: 2, dilation: 2)
        XCTAssertEqual(odd.count, 0)
    }

    /// Every weight lands once, at the texel and lane conv_transpose.comp's header draws; bias after them.
    func testPackingFollowsTheKernelLayout() {
        let conv = WeightPacking.ConvGeometry(outChannels: 10, inChannelsPerGroup: 3, kernelH: 3, kernelW: 2, groups: 2)
        let geometry = WeightPacking.ConvTransposeGeometry(conv: conv, strides: (2, 3), dilations: (1, 1), padsBegin: (1, 0))
        let (c, ocg) = (6, 5)
        let weight = (0..<(c * ocg * 3 * 2)).map { Float($0 + 1) }
        let bias = (0..<10).map { Float(-$0 - 1) }
        let packed = WeightPacking.convTranspose(weight: weight, bias: bias, geometry: geometry)
        XCTAssertEqual(packed.count, conv.texels * 4)
        let rowsBefore = geometry.rowTaps.indices.map { r in geometry.rowTaps[..<r].map(\.count).reduce(0, +) }
        let colsBefore = geometry.columnTaps.indices.map { r in geometry.columnTaps[..<r].map(\.count).reduce(0, +) }
        for ci in 0..<c {
            for o in 0..<ocg {
                for kh in 0..<3 {
                    for kw in 0..<2 {
                        let ry = geometry.rowTaps.firstIndex { $0.count > 0 && (kh - $0.first) % $0.step == 0 && kh >= $0.first }!
                        let rx = geometry.columnTaps.firstIndex { $0.count > 0 && (kw - $0.first) % $0.step == 0 && kw >= $0.first }!
                        let (rows, cols) = (geometry.rowTaps[ry], geometry.columnTaps[rx])
                        let (ty, tx) = ((kh - rows.first) / rows.step, (kw - cols.first) / cols.step)
                        let g = ci / 3, ic = ci % 3
                        let ocb = g * conv.blocksPerGroup + o / 4
                        let phaseBase = conv.blocks * 3 * (rowsBefore[ry] * 2 + rows.count * colsBefore[rx])
                        let texel = phaseBase + ((ocb * 3 + ic) * rows.count + ty) * cols.count + tx
                        XCTAssertEqual(packed[texel * 4 + o % 4], weight[((ci * ocg + o) * 3 + kh) * 2 + kw],
                                       "W[\(ci), \(o), \(kh), \(kw)]")
                    }
                }
            }
        }
        for m in 0..<10 {
            let texel = conv.weightTexels + (m / 5) * conv.blocksPerGroup + (m % 5) / 4
            XCTAssertEqual(packed[texel * 4 + (m % 5) % 4], bias[m], "bias[\(m)]")
        }
        // Each weight once and zero padding elsewhere: the packed values sum to the weights' and bias' sums.
        XCTAssertEqual(packed.reduce(0, +), weight.reduce(0, +) + bias.reduce(0, +))
    }

    /// 3-D: phases row-major over (depth, rows, columns), each a block [OCB, ICG, nTz, nTy, nTx], as
    /// conv_transpose.comp's header draws it; a depth phase with no taps (stride 2, dilation 2) takes no texels.
    func testPacking3DFollowsTheKernelLayout() {
        let (c, ocg, icg, groups) = (4, 5, 2, 2)
        let kernel = [3, 2, 3]
        let geometry = WeightPacking.ConvTransposeGeometry(outChannels: ocg * groups, inChannelsPerGroup: icg,
                                                           groups: groups, kernel: kernel, strides: [2, 1, 3],
                                                           dilations: [2, 1, 1], padsBegin: [1, 0, 1])
        let conv = geometry.conv
        XCTAssertEqual(conv.kernelH, 3 * 2)
        XCTAssertEqual(geometry.depthTaps.map(\.count), [0, 3])  // k·2 ≡ r + 1 (mod 2): only r = 1
        let taps = kernel.reduce(1, *)
        let weight = (0..<(c * ocg * taps)).map { Float($0 + 1) }
        let bias = (0..<10).map { Float(-$0 - 1) }
        let packed = WeightPacking.convTranspose(weight: weight, bias: bias, geometry: geometry)
        XCTAssertEqual(packed.count, conv.texels * 4)
        func before(_ phases: [WeightPacking.TransposedTaps], _ r: Int) -> Int { phases[..<r].map(\.count).reduce(0, +) }
        func phase(_ phases: [WeightPacking.TransposedTaps], _ k: Int) -> (r: Int, t: Int) {
            let r = phases.firstIndex { $0.count > 0 && k >= $0.first && (k - $0.first) % $0.step == 0 }!
            return (r, (k - phases[r].first) / phases[r].step)
        }
        for ci in 0..<c {
            for o in 0..<ocg {
                for k in 0..<taps {
                    let (kd, kh, kw) = (k / 6, k / 3 % 2, k % 3)
                    let (rd, tz) = phase(geometry.depthTaps, kd)
                    let (ry, ty) = phase(geometry.rowTaps, kh)
                    let (rx, tx) = phase(geometry.columnTaps, kw)
                    let (nz, ny, nx) = (geometry.depthTaps[rd].count, geometry.rowTaps[ry].count,
                                        geometry.columnTaps[rx].count)
                    let phaseBase = conv.blocks * icg * (before(geometry.depthTaps, rd) * 2 * 3
                        + nz * (before(geometry.rowTaps, ry) * 3 + ny * before(geometry.columnTaps, rx)))
                    let ocb = (ci / icg) * conv.blocksPerGroup + o / 4
                    let texel = phaseBase + (((ocb * icg + ci % icg) * nz + tz) * ny + ty) * nx + tx
                    XCTAssertEqual(packed[texel * 4 + o % 4], weight[(ci * ocg + o) * taps + k],
                                   "W[\(ci), \(o), \(kd), \(kh), \(kw)]")
                }
            }
        }
        XCTAssertEqual(packed.reduce(0, +), weight.reduce(0, +) + bias.reduce(0, +))
    }
}
