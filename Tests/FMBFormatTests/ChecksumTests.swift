// fm64 known answers (it is XXH64, seed 0: values from the reference implementation, python-xxhash 4.1)
// and a cross-check against libzstd's own XXH64 (zstd frame checksums are its low 32 bits).

import CZstd
import FMBFormat
import XCTest

final class ChecksumTests: XCTestCase {
    func testKnownAnswers() {
        XCTAssertEqual(Checksum.fm64([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(Checksum.fm64(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(Checksum.fm64(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(Checksum.fm64(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x0B24_2D36_1FDA_71BC)
        XCTAssertEqual(Checksum.fm64((0..<256).map { UInt8($0) }), 0x1FAC_BE84_06CD_904B)
        // Every tail shape: < 32 bytes (no stripes), 8/4/1-byte tails, exact stripes, long inputs.
        let expected: [Int: UInt64] = [
            7: 0xAFBE_FC3D_6C6F_9A8E, 8: 0x3DA5_C7AA_2696_83E0, 12: 0x9650_FDE9_3A38_3E90,
            31: 0x3391_303D_485E_846E, 32: 0x40B7_AFF7_5D45_BBC8, 33: 0x4997_CAE4_951C_17A5,
            63: 0x2944_B4DA_FC69_B206, 64: 0xBB76_F6EF_19BD_5A1B, 100: 0xF0B2_9A91_5621_716D,
            1000: 0x9E33_00C1_CDE3_C58D, 4097: 0x36B2_CC6A_9749_6105,
        ]
        for (n, value) in expected {
            XCTAssertEqual(Checksum.fm64((0..<n).map { UInt8(($0 * 31 + 7) % 251) }), value, "length \(n)")
        }
    }

    func testUnalignedInputGivesSameValue() {
        let data = (0..<300).map { UInt8(($0 * 31 + 7) % 251) }
        let padded = [0x55] + data
        let direct = Checksum.fm64(data)
        let shifted = padded.withUnsafeBytes { Checksum.fm64(UnsafeRawBufferPointer(rebasing: $0[1...])) }
        XCTAssertEqual(direct, shifted)
    }

    /// libzstd computes XXH64 (seed 0) of the content for frame checksums and stores its low 32 bits in the
    /// last 4 bytes of the frame: an independent implementation to compare with, for every tail length.
    func testMatchesZstdFrameChecksums() throws {
        guard let cctx = ZSTD_createCCtx() else { return XCTFail("ZSTD_createCCtx") }
        defer { ZSTD_freeCCtx(cctx) }
        XCTAssertEqual(ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)), 0)
        for n in Array(0...200) + [1023, 4096, 65_537] {
            let data = Fixtures.noise(n, seed: UInt64(n))
            var frame = [UInt8](repeating: 0, count: ZSTD_compressBound(n))
            let size = frame.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { ZSTD_compress2(cctx, dst.baseAddress, dst.count, $0.baseAddress, n) }
            }
            XCTAssertEqual(ZSTD_isError(size), 0)
            let stored = (0..<4).reduce(UInt32(0)) { $0 | UInt32(frame[size - 4 + $1]) << (8 * $1) }
            XCTAssertEqual(UInt32(truncatingIfNeeded: Checksum.fm64(data)), stored, "length \(n)")
        }
    }
}
