// Weight packing puts every value where its kernel reads it; ImageLayout extents and encodings.
// The expected positions are decoded the way the kernels decode a texel index (see conv2d.comp and
// gemm.comp), independently of WeightPacking's own index helpers.

import FMBFormat
import XCTest
@testable import FlashMemCompiler

final class WeightPackingTests: XCTestCase {
    /// Deterministic distinct values: value i = i + 1 scaled, so a misplaced value is always detected.
    private func ramp(_ count: Int) -> [Float] {
        (0..<count).map { Float($0 + 1) * 0.5 }
    }

    private func checkConv(oc: Int, icPerGroup: Int, kh: Int, kw: Int, groups: Int, bias: Bool,
                           file: StaticString = #filePath, line: UInt = #line) {
        let geometry = WeightPacking.ConvGeometry(outChannels: oc, inChannelsPerGroup: icPerGroup,
                                                  kernelH: kh, kernelW: kw, groups: groups)
        let weight = ramp(oc * icPerGroup * kh * kw)
        let biasValues = bias ? (0..<oc).map { -Float($0) - 1 } : nil
        let packed = WeightPacking.conv2d(weight: weight, bias: biasValues, geometry: geometry)
        let ocpg = oc / groups
        let blocksPerGroup = (ocpg + 3) / 4
        let blocks = groups * blocksPerGroup
        XCTAssertEqual(packed.count, 4 * (blocks * icPerGroup * kh * kw + blocks), file: file, line: line)
        // Walk every texel as conv2d.comp does: t = ((ocb·ICG + ic)·KH + y)·KW + x, oc = g·OCG + 4b + lane.
        for ocb in 0..<blocks {
            let g = ocb / blocksPerGroup, b = ocb % blocksPerGroup
            for ic in 0..<icPerGroup {
                for y in 0..<kh {
                    for x in 0..<kw {
                        let t = ((ocb * icPerGroup + ic) * kh + y) * kw + x
                        for lane in 0..<4 {
                            let ocInGroup = 4 * b + lane
                            let expected: Float = ocInGroup < ocpg
                                ? weight[(((g * ocpg + ocInGroup) * icPerGroup + ic) * kh + y) * kw + x] : 0
                            XCTAssertEqual(packed[4 * t + lane], expected, "texel \(t) lane \(lane)", file: file, line: line)
                        }
                    }
                }
            }
            let t = blocks * icPerGroup * kh * kw + ocb
            for lane in 0..<4 {
                let ocInGroup = 4 * b + lane
                let expected: Float = ocInGroup < ocpg ? (biasValues?[g * ocpg + ocInGroup] ?? 0) : 0
                XCTAssertEqual(packed[4 * t + lane], expected, "bias texel \(t) lane \(lane)", file: file, line: line)
            }
        }
        // The index helpers agree with the walk.
        for o in 0..<oc {
            let (t, lane) = geometry.texel(oc: o, ic: icPerGroup - 1, kh: kh - 1, kw: kw - 1)
            XCTAssertEqual(packed[4 * t + lane], weight[(o * icPerGroup + icPerGroup) * kh * kw - 1], file: file, line: line)
        }
    }

    func testConvPackingOddShapes() {
        checkConv(oc: 6, icPerGroup: 5, kh: 3, kw: 3, groups: 1, bias: true)
        checkConv(oc: 6, icPerGroup: 5, kh: 3, kw: 3, groups: 2, bias: true)   // 3 channels per group
        checkConv(oc: 8, icPerGroup: 1, kh: 3, kw: 3, groups: 8, bias: false)  // depthwise
        checkConv(oc: 3, icPerGroup: 7, kh: 1, kw: 1, groups: 1, bias: false)
        checkConv(oc: 10, icPerGroup: 2, kh: 1, kw: 5, groups: 1, bias: true)  // conv1d as H = 1
        checkConv(oc: 12, icPerGroup: 3, kh: 2, kw: 3, groups: 3, bias: true)  // 4 channels per group
    }

    func testGemmPacking() {
        for (k, n, transB) in [(5, 7, false), (5, 7, true), (1, 1, false), (3, 8, true), (16, 4, false)] {
            let geometry = WeightPacking.GemmGeometry(k: k, n: n)
            let b = ramp(k * n)
            let bias = (0..<n).map { Float($0) - 10 }
            let packed = WeightPacking.gemm(b: b, transB: transB, geometry: geometry, alpha: 2, bias: bias, beta: 0.5)
            let blocks = (n + 3) / 4
            XCTAssertEqual(packed.count, 4 * (k * blocks + blocks))
            // gemm.comp reads texel k·NB + nb, lane = column − 4nb; then bias texel K·NB + nb.
            for kk in 0..<k {
                for nb in 0..<blocks {
                    for lane in 0..<4 {
                        let col = 4 * nb + lane
                        let source = transB ? b[min(col, n - 1) * k + kk] : b[kk * n + min(col, n - 1)]
                        let expected: Float = col < n ? 2 * source : 0
                        XCTAssertEqual(packed[4 * (kk * blocks + nb) + lane], expected, "k \(kk) col \(col) transB \(transB)")
                    }
                }
            }
            for col in 0..<(4 * blocks) {
                XCTAssertEqual(packed[4 * k * blocks + col], col < n ? 0.5 * bias[col] : 0)
            }
            let (t, lane) = geometry.texel(k: k - 1, n: n - 1)
            XCTAssertEqual(packed[4 * t + lane], 2 * (transB ? b[(n - 1) * k + k - 1] : b[k * n - 1]))
        }
    }

    func testImageLayoutExtents() {
        let cases: [(Int, (Int, Int, Int))] = [
            (0, (1, 1, 1)), (1, (1, 1, 1)), (3, (4, 1, 1)), (1024, (1024, 1, 1)), (1025, (1024, 2, 1)),
            (3000, (1024, 3, 1)), (1000 * 1024, (1024, 1000, 1)), (1024 * 1024, (1024, 1024, 1)),
            // 1025 rows (a 1024 × 4096 weight and its bias row): one layer (1152 rows on NVIDIA, 11.6% over the
            // fewest, 129 layers of 8), rather than 17 layers of 64 (1088 rows): 16 copies fewer for 64 rows more.
            (1024 * 1024 + 1, (1024, 1025, 1)), (1024 * 1024 + 1024, (1024, 1025, 1)),
            // 2560 rows of 2048 texels fill 20 blocks of 128 exactly: one layer.
            (5 * 1024 * 1024 - 7, (2048, 2560, 1)),
            // GPT-Neo-2.7B's MLP (2560 × 10240 and its bias): one layer of 3202 rows 2048 wide, the same device
            // rows (3328 of 2048 texels) as 13 layers of 512 of 1024.
            (2560 * 10240 / 4 + 10240 / 4, (2048, 3202, 1)),
            (2048 * 1024 + 1, (1024, 2049, 1)),
            // A 384 × 384 fp16 weight and its bias (37 rows): one layer would take 64 rows on NVIDIA, 5 of 8 take 40.
            (384 * 384 / 4 + 96, (1024, 8, 5)),
            // ViT-B/16's 768 × 3072 fp16 weight and its bias in half8 (289 rows): 5 layers of 64 (320 rows), not 19
            // of 16 (304): 5% more memory, 14 copies fewer.
            (768 * 3072 / 8 + 3072 / 8, (1024, 64, 5)),
            // 640 rows take 640 as one layer: kept whole.
            (640 * 1024, (1024, 640, 1)),
        ]
        for (texels, expected) in cases {
            let e = ImageLayout.extent(texels: texels)
            XCTAssertEqual([e.width, e.height, e.layers], [expected.0, expected.1, expected.2], "\(texels) texels")
            XCTAssertGreaterThanOrEqual(e.width * e.height * e.layers, texels)
            XCTAssertEqual(e.width & (e.width - 1), 0)
            XCTAssertLessThan(e.width * e.height * e.layers - max(texels, 1), max(e.width, 1) * (e.layers > 1 ? e.height : 1),
                              "\(texels) texels: padding of at most one row (one layer when layered)")
            if e.layers > 1 {
                XCTAssertEqual(e.height & (e.height - 1), 0, "layered images have power-of-two height")
                XCTAssertLessThanOrEqual(e.layers, ImageLayout.maxLayers)
            }
            // Device texels (each layer padded as NVIDIA tiles it) within texels / 8 of the fewest any layout of widths
            // 1024...4096 takes, by brute force; and never more layers than the fewest-memory layout of that width.
            var fewest = Int.max
            var width = min(1024, ImageLayout.nextPowerOfTwo(max(texels, 1)))
            while width <= min(ImageLayout.maxSide, ImageLayout.nextPowerOfTwo(max(texels, 1))) {
                let rows = (max(texels, 1) + width - 1) / width
                if rows <= ImageLayout.maxSide { fewest = min(fewest, ImageLayout.paddedRows(rows) * width) }
                for h in [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
                where h < rows && (rows + h - 1) / h <= ImageLayout.maxLayers {
                    fewest = min(fewest, (rows + h - 1) / h * h * width)
                }
                width *= 2
            }
            let device = ImageLayout.paddedRows(e.height) * e.layers * e.width
            XCTAssertLessThanOrEqual((device - fewest) * 8, max(texels, 1), "\(texels) texels: device texels within 1/8 of the fewest")
        }
        XCTAssertTrue(ImageLayout.coordinate(texel: 0, width: 1024, height: 4) == (0, 0, 0))
        XCTAssertTrue(ImageLayout.coordinate(texel: 1023, width: 1024, height: 4) == (1023, 0, 0))
        XCTAssertTrue(ImageLayout.coordinate(texel: 1025, width: 1024, height: 4) == (1, 1, 0))
        XCTAssertTrue(ImageLayout.coordinate(texel: 4 * 1024 + 3, width: 1024, height: 4) == (3, 0, 1))
    }

    func testImageEncodingAndPadding() {
        let values: [Float] = [1, -2, 0.1, 3, 5, 6]  // 2 texels (the second half-filled)
        let f32 = ImageLayout.image(name: "w", values: values, format: .rgba32f)
        XCTAssertEqual([f32.width, f32.height, f32.layers], [2, 1, 1])
        XCTAssertEqual(f32.texels.count, 2 * 16)
        XCTAssertEqual((0..<8).map { ImageLayout.component($0, of: f32) }, values + [0, 0])
        XCTAssertEqual(Array(f32.texels[0..<4]), [0x00, 0x00, 0x80, 0x3f])  // 1.0f little-endian

        let f16 = ImageLayout.image(name: "w", values: values, format: .rgba16f)
        XCTAssertEqual(f16.texels.count, 2 * 8)
        XCTAssertEqual(Array(f16.texels[0..<2]), [0x00, 0x3c])  // 1.0h
        XCTAssertEqual(ImageLayout.component(2, of: f16), Float(Float16(0.1)))
        XCTAssertEqual(ImageLayout.component(7, of: f16), 0)
    }

    func testHalfConversionRoundsToNearestEven() {
        func half(_ v: Float) -> UInt16 {
            let bytes = ImageLayout.encode([v], format: .rgba16f, paddedTo: 1)
            return UInt16(bytes[0]) | UInt16(bytes[1]) << 8
        }
        XCTAssertEqual(half(1 + 1.0 / 2048), 0x3c00)           // tie → even (down)
        XCTAssertEqual(half(1 + 3.0 / 2048), 0x3c02)           // tie → even (up)
        XCTAssertEqual(half(1 + 1.0 / 2048 + 1.0 / 65536), 0x3c01)  // above the tie → up
        XCTAssertEqual(half(65520), 0x7c00)                    // rounds to +inf
        XCTAssertEqual(half(-0.0), 0x8000)
        XCTAssertEqual(half(6e-8), 0x0001)                     // smallest subnormal
    }

    func testPushConstantsAreLittleEndianWords() {
        var push = PushConstants()
        push.append(UInt32(0x0102_0304))
        push.append(7)
        push.append(Float(1))
        push.append([2, 3])
        XCTAssertEqual(push.count, 20)
        XCTAssertEqual(Array(push.bytes[0..<4]), [4, 3, 2, 1])
        XCTAssertEqual(push.u32(at: 1), 7)
        XCTAssertEqual(push.u32(at: 2), 0x3f80_0000)
        XCTAssertEqual(push.u32(at: 4), 3)
    }
}
