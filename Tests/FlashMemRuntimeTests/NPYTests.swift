import Foundation
import XCTest
@testable import FlashMemRuntime

final class NPYTests: XCTestCase {
    let samples: [HostTensor] = [
        HostTensor(name: "f32", shape: [2, 3], floats: [0, 1.5, -2, 3e38, -0.0, 7]),
        HostTensor(name: "f16", elementType: .float16, shape: [3], bytes: [0x00, 0x3E, 0x00, 0xC0, 0xFF, 0x7B]),
        HostTensor(name: "i64", shape: [1, 2], int64s: [-1, 1 << 40]),
        HostTensor(name: "i32", elementType: .int32, shape: [], bytes: [7, 0, 0, 0]),
        HostTensor(name: "bool", elementType: .bool, shape: [3], bytes: [1, 0, 1]),
        HostTensor(name: "empty", shape: [2, 0], floats: []),
    ]

    func testRoundTripEveryTypeThroughAFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("npy-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for tensor in samples {
            let path = dir.appendingPathComponent("\(tensor.name).npy").path
            try NPY.write(tensor, path: path)
            let back = try NPY.read(path: path)
            XCTAssertEqual(back, tensor)
            let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual((bytes.count - tensor.bytes.count) % 64, 0, "data starts 64-byte aligned")
        }
    }

    func testReadsWhatNumpyWrites() throws {
        // np.lib.format.write_array(f, np.arange(3, dtype='<i4'), version=(3, 0)), byte for byte.
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }"
        let padded = header + String(repeating: " ", count: 116 - header.utf8.count - 1) + "\n"
        let v3: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 3, 0, 116, 0, 0, 0] + Array(padded.utf8)
            + [0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]
        let tensor = try NPY.decode(v3)
        XCTAssertEqual(tensor.elementType, .int32)
        XCTAssertEqual(tensor.shape, [3])
        XCTAssertEqual(tensor.int64s(), [0, 1, 2])
        // numpy 2 pads v1 headers to 128 bytes; keys in another order and a list shape are accepted too.
        let h1 = "{'shape': [2], 'fortran_order': False, 'descr': '|b1'}"
        let p1 = h1 + String(repeating: " ", count: 118 - h1.utf8.count - 1) + "\n"
        let v1: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 118, 0] + Array(p1.utf8) + [1, 0]
        XCTAssertEqual(try NPY.decode(v1).int64s(), [1, 0])
    }

    func testMalformedFilesAreClearErrors() throws {
        func header(_ dict: String, data: [UInt8] = [0, 0, 0, 0], version: UInt8 = 1) -> [UInt8] {
            let text = dict + "\n"
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0, UInt8(text.utf8.count), 0] + Array(text.utf8) + data
        }
        func reason(_ bytes: [UInt8]) -> String {
            do {
                _ = try NPY.decode(bytes, path: "in.npy")
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(reason(Array("PK\u{3}\u{4}not npy".utf8)).contains("in.npy: not a .npy file"))
        XCTAssertTrue(reason(header("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }")).contains("Fortran-order"))
        XCTAssertTrue(reason(header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }")).contains("big-endian dtype '>f4'"))
        XCTAssertTrue(reason(header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", data: Array(repeating: 0, count: 8)))
            .contains("unsupported dtype '<f8'"))
        XCTAssertTrue(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }")).contains("data is 4 bytes"))
        XCTAssertTrue(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", version: 4))
            .contains("unsupported .npy format version 4.0"))
        XCTAssertTrue(reason(header("{'descr': '<f4', 'shape': (1,), }")).contains("no 'fortran_order'"))
        XCTAssertTrue(reason(header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,")).contains("malformed header"))
        var truncated = header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }")
        truncated[8] = 200
        XCTAssertTrue(reason(truncated).contains("runs past the end"))
        XCTAssertThrowsError(try NPY.read(path: "/nonexistent/x.npy")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/x.npy"))
        }
    }
}
