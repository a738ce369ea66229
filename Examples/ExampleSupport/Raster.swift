// 8-bit RGB images for the examples: binary PPM (P6) in and out, normalization into a model's input, boxes drawn.
// Crops, rotation and resizing are RGBImage+Transform.swift; boxes from a probability map TextBoxes.swift.

import Foundation

/// A PPM that cannot be read or written; the description names the file and what is wrong.
public struct RasterError: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) { self.description = description }
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
public struct RGBImage: Equatable {
    public var width: Int, height: Int
    public var pixels: [UInt8]

    /// An image of `pixels` (`width × height × 3` bytes, row-major RGB).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0 && pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Reads a binary PPM (P6, maxval 255), the format every image tool writes (`convert page.png page.ppm`).
    public init(ppmPath path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RasterError(description: "\(path): cannot read the file")
        }
        let bytes = [UInt8](data)
        var position = 0
        func field() throws -> Int {
            while position < bytes.count {  // whitespace and # comments between header fields
                if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count && bytes[position] != UInt8(ascii: "\n") { position += 1 }
                } else if [9, 10, 13, 32].contains(bytes[position]) {
                    position += 1
                } else { break }
            }
            let start = position
            while position < bytes.count, (48...57).contains(bytes[position]) { position += 1 }
            guard position > start, let value = Int(String(decoding: bytes[start..<position], as: UTF8.self)) else {
                throw RasterError(description: "\(path): malformed PPM header at byte \(start)")
            }
            return value
        }
        guard bytes.count > 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "6") else {
            throw RasterError(description: "\(path): not a binary PPM (P6) file")
        }
        position = 2
        width = try field()
        height = try field()
        let maxValue = try field()
        guard width > 0, height > 0, width <= 1 << 15, height <= 1 << 15 else {
            throw RasterError(description: "\(path): \(width)×\(height) pixels; expected 1 to 32768 on each side")
        }
        guard maxValue == 255 else { throw RasterError(description: "\(path): maxval \(maxValue); only 8-bit PPM (255) is read") }
        position += 1  // the single whitespace byte before the raster
        guard bytes.count - position >= width * height * 3 else {
            throw RasterError(description: "\(path): \(bytes.count - position) raster bytes, expected \(width * height * 3) for \(width)×\(height)")
        }
        pixels = Array(bytes[position..<(position + width * height * 3)])
    }

    public func writePPM(to path: String) throws {
        var data = Data("P6\n\(width) \(height)\n255\n".utf8)
        data.append(contentsOf: pixels)
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw RasterError(description: "\(path): cannot write the file")
        }
    }

    /// NCHW float32, each channel (value/255 − mean) / std: the detector's ImageNet normalization.
    public func normalizedCHW(mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * width * height)
        for c in 0..<3 {
            for i in 0..<(width * height) {
                out[c * width * height + i] = (Float(pixels[i * 3 + c]) / 255 - mean[c]) / std[c]
            }
        }
        return out
    }

    public mutating func drawRectangle(_ box: Box, color: (UInt8, UInt8, UInt8), thickness: Int = 2) {
        for y in max(box.y0, 0)...min(box.y1, height - 1) {
            for x in max(box.x0, 0)...min(box.x1, width - 1) {
                let onEdge = x - box.x0 < thickness || box.x1 - x < thickness || y - box.y0 < thickness || box.y1 - y < thickness
                if onEdge {
                    pixels[(y * width + x) * 3] = color.0
                    pixels[(y * width + x) * 3 + 1] = color.1
                    pixels[(y * width + x) * 3 + 2] = color.2
                }
            }
        }
    }
}
