import XCTest
@testable import FlashMemRuntime
import TestSupport

final class ConversionTests: XCTestCase {
    func testHalfConversionMatchesFloat16() {
        #if arch(x86_64) || arch(arm64)
        // Every half converts exactly; the result agrees with the standard library's Float16.
        for bits in 0...UInt16.max {
            let mine = halfToFloat(bits)
            let reference = Float(Float16(bitPattern: bits))
            XCTAssertTrue(mine.bitPattern == reference.bitPattern || (mine.isNaN && reference.isNaN), "half \(bits)")
            if mine.bitPattern != reference.bitPattern { break }
        }
        var rng = SplitMix(seed: 5)
        for _ in 0..<100_000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            let mine = floatToHalf(f), reference = Float16(f).bitPattern
            if f.isNaN { XCTAssertTrue(halfToFloat(mine).isNaN); continue }
            XCTAssertEqual(mine, reference, "float \(f) (0x\(String(f.bitPattern, radix: 16)))")
            if mine != reference { break }
        }
        for f: Float in [65504, 65520, 65519.99, 6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, -0.0, .infinity] {
            XCTAssertEqual(floatToHalf(f), Float16(f).bitPattern, "\(f)")
        }
        #endif
    }

    func testInputsBecomeArenaTypes() throws {
        var arena = [UInt8](repeating: 0xFF, count: 16)
        func convert(_ tensor: HostTensor) throws -> [UInt8] {
            try arena.withUnsafeMutableBytes { try IOStaging.toArena(tensor, into: $0) }
            return arena
        }
        let i64 = HostTensor(name: "ids", shape: [4], int64s: [0, -5, 1 << 31 - 1, -(1 << 31)])
        XCTAssertEqual(try convert(i64).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) },
                       [0, -5, Int32.max, Int32.min])
        let bools = HostTensor(name: "mask", elementType: .bool, shape: [4], bytes: [1, 0, 2, 0])
        XCTAssertEqual(try convert(bools).withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) }, [1, 0, 1, 0])
        let halves = HostTensor(name: "h", elementType: .float16, shape: [4], bytes: [0, 0x3C, 0, 0xC0, 0x00, 0x7C, 0x01, 0x00])
        XCTAssertEqual(try convert(halves).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) },
                       [1, -2, .infinity, 5.9604645e-08])
        let tooBig = HostTensor(name: "ids", shape: [1], int64s: [1 << 40])
        XCTAssertThrowsError(try convert(tooBig)) { XCTAssertTrue("\($0)".contains("does not fit int32")) }
    }

    func testOutputsBecomeDeclaredTypes() {
        let ints: [Int32] = [3, 0, -7, 1]
        ints.withUnsafeBytes { raw in
            let i64 = IOStaging.fromArena(raw, binding: IOBinding(name: "o", elementType: .int64, shape: [2, 2], tensor: 0))
            XCTAssertEqual(i64.int64s(), [3, 0, -7, 1])
            XCTAssertEqual(i64.shape, [2, 2])
            let b = IOBinding(name: "o", elementType: .bool, shape: [4], tensor: 0)
            XCTAssertEqual(IOStaging.fromArena(raw, binding: b).bytes, [1, 0, 1, 1])
        }
        let floats: [Float] = [1, -2.5, 65504, 1e-3]
        floats.withUnsafeBytes { raw in
            let h = IOStaging.fromArena(raw, binding: IOBinding(name: "o", elementType: .float16, shape: [4], tensor: 0))
            XCTAssertEqual(h.bytes.count, 8)
            XCTAssertEqual(h.floats(), floats.map { halfToFloat(floatToHalf($0)) })
        }
    }

    /// Conversions of tensors larger than one piece run piece by piece on several threads: every element, at every
    /// piece boundary and in the short last piece, converts as it does alone, both ways.
    func testLargeTensorsConvertPieceByPiece() throws {
        let count = 2 * conversionPieceElements + 12_345
        var rng = SplitMix(seed: 11)
        let floats = (0..<count).map { _ in Float(Int(rng.next() % 2_000_001) - 1_000_000) * 1.7e-3 }
        let binding = IOBinding(name: "o", elementType: .float16, shape: [Int64(count)], tensor: 0)
        let halves = floats.withUnsafeBytes { IOStaging.fromArena($0, binding: binding) }
        let expected = floats.map(floatToHalf)
        XCTAssertEqual(halves.bytes.withUnsafeBytes { Array($0.bindMemory(to: UInt16.self)) }, expected)

        var arena = [Float](repeating: .nan, count: count)
        try arena.withUnsafeMutableBytes { try IOStaging.toArena(halves, into: $0) }
        XCTAssertEqual(arena, expected.map(halfToFloat))

        let ints = (0..<Int32(count)).map { $0 % 3 - 1 }
        ints.withUnsafeBytes { raw in
            let wide = IOStaging.fromArena(raw, binding: IOBinding(name: "o", elementType: .int64, shape: [Int64(count)], tensor: 0))
            XCTAssertEqual(wide.int64s(), ints.map(Int64.init))
            let bools = IOStaging.fromArena(raw, binding: IOBinding(name: "o", elementType: .bool, shape: [Int64(count)], tensor: 0))
            XCTAssertEqual(bools.bytes, ints.map { $0 != 0 ? 1 : 0 })
        }
    }
}
