// Images of 8 halves per texel (format 1.5, `ImageFormat.half8`): the writer stamps 1.5 exactly when a bundle has
// one, the reader reads it back with its 16-byte texels, and an image format this reader does not know is refused
// naming the image and the formats it knows.

@testable import FMBFormat
import XCTest

final class HalfTexelImageTests: XCTestCase {
    func parse(_ bytes: [UInt8]) throws -> ParsedBundle {
        try bytes.withUnsafeBytes { try BundleReader.parse(bytes: $0, verifyChecksums: true) }
    }

    /// `placed()` with fc2.weight (8 × 4 rgba16f texels) held as 4 × 4 half8 texels: the same 256 bytes.
    static func halved() -> (bundle: FMBundle, payload: [UInt8]) {
        var (bundle, payload) = Fixtures.placed()
        let i = bundle.images.firstIndex { $0.name == "fc2.weight" }!
        XCTAssertEqual(bundle.images[i].format, .rgba16f)
        XCTAssertEqual(bundle.images[i].width, 8)
        bundle.images[i].format = .half8
        bundle.images[i].width = 4
        return (bundle, payload)
    }

    func testHalf8TexelsAre16BytesOf8Values() {
        XCTAssertEqual(ImageFormat.half8.texelBytes, 16)
        XCTAssertEqual(ImageFormat.half8.valuesPerTexel, 8)
        XCTAssertEqual(ImageFormat.rgba16f.valuesPerTexel, 4)
        XCTAssertEqual(ImageFormat.rgba32f.texelBytes, 16)
    }

    func testAHalf8ImageRoundTripsAsFormat1_5() throws {
        let (bundle, payload) = Self.halved()
        let parsed = try parse(try BundleWriter.serialize(bundle, payload: payload))
        XCTAssertEqual(parsed.layout.minor, 5)
        XCTAssertEqual(FileLayout.currentMinor, 5)
        XCTAssertEqual(parsed.bundle, bundle)
        XCTAssertEqual(parsed.bundle.images.first { $0.name == "fc2.weight" }?.byteSize, 256)
        XCTAssertTrue(BundleValidator.validate(parsed.bundle, dataSize: UInt64(payload.count)).isEmpty)
        // Without it the same bundle keeps its version.
        XCTAssertEqual(try parse(try Fixtures.placedFile()).layout.minor, 3)
    }

    func testAnUnknownImageFormatIsRefusedNamingTheImage() throws {
        var images = BundleWriter.encodeImages(Self.halved().bundle.images)
        // images: u32 count, then per image str name (u32 length + bytes), u8 format, 3 reserved, 3 × u32.
        var at = 4
        for image in Self.halved().bundle.images {
            at += 4 + image.name.utf8.count
            if image.format == .half8 { break }
            at += 16
        }
        XCTAssertEqual(images[at], ImageFormat.half8.rawValue)
        XCTAssertEqual(try images.withUnsafeBytes { raw in
            var r = ByteReader(raw, range: 0..<raw.count, section: "images")
            return try BundleReader.decodeImages(&r)
        }, Self.halved().bundle.images)
        images[at] = 4
        XCTAssertThrowsError(try images.withUnsafeBytes { raw in
            var r = ByteReader(raw, range: 0..<raw.count, section: "images")
            return try BundleReader.decodeImages(&r)
        }) {
            let text = "\($0)"
            XCTAssertTrue(text.contains("images[1].format") && text.contains("unknown image format 4")
                          && text.contains("1 to 3"), text)
        }
    }
}
