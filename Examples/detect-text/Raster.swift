// The image side of detect-text: binary PPM (P6) in and out, text boxes from a probability map, boxes drawn.

import Foundation

struct RasterError: Error, CustomStringConvertible {
    var description: String
}

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
struct RGBImage {
    var width: Int, height: Int
    var pixels: [UInt8]

    /// Reads a binary PPM (P6, maxval 255), the format every image tool writes (`convert page.png page.ppm`).
    init(ppmPath path: String) throws {
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
        guard maxValue == 255 else { throw RasterError(description: "\(path): maxval \(maxValue); only 8-bit PPM (255) is read") }
        position += 1  // the single whitespace byte before the raster
        guard bytes.count - position >= width * height * 3 else {
            throw RasterError(description: "\(path): \(bytes.count - position) raster bytes, expected \(width * height * 3) for \(width)×\(height)")
        }
        pixels = Array(bytes[position..<(position + width * height * 3)])
    }

    func writePPM(to path: String) throws {
        var data = Data("P6\n\(width) \(height)\n255\n".utf8)
        data.append(contentsOf: pixels)
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw RasterError(description: "\(path): cannot write the file")
        }
    }

    /// NCHW float32, each channel (value/255 − mean) / std: the detector's ImageNet normalization.
    func normalizedCHW(mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * width * height)
        for c in 0..<3 {
            for i in 0..<(width * height) {
                out[c * width * height + i] = (Float(pixels[i * 3 + c]) / 255 - mean[c]) / std[c]
            }
        }
        return out
    }

    mutating func drawRectangle(_ box: Box, color: (UInt8, UInt8, UInt8), thickness: Int = 2) {
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

/// An axis-aligned box, inclusive pixel coordinates.
struct Box: Equatable {
    var x0: Int, y0: Int, x1: Int, y1: Int
}

/// Text boxes from a DBNet probability map ([height × width], row-major), by the rule the check script repeats:
/// pixels above `threshold`; 8-connected components; drop those under `minimumPixels`; each component's bounding
/// box grown on every side by area × `unclipRatio` / perimeter, rounded half up (DBNet shrinks text regions by that offset when it
/// trains), clamped to the image. Boxes in order of their first pixel (row-major).
func textBoxes(probability: [Float], width: Int, height: Int, threshold: Float = 0.3, minimumPixels: Int = 10,
               unclipRatio: Double = 1.5) -> [Box] {
    var label = [Int32](repeating: 0, count: width * height)
    var boxes: [Box] = []
    var stack: [Int] = []
    var next: Int32 = 0
    for start in 0..<(width * height) where probability[start] > threshold && label[start] == 0 {
        next += 1
        label[start] = next
        stack.append(start)
        var box = Box(x0: start % width, y0: start / width, x1: start % width, y1: start / width)
        var count = 0
        while let p = stack.popLast() {
            count += 1
            let (x, y) = (p % width, p / width)
            box = Box(x0: min(box.x0, x), y0: min(box.y0, y), x1: max(box.x1, x), y1: max(box.y1, y))
            for dy in -1...1 {
                for dx in -1...1 where (dx, dy) != (0, 0) {
                    let (nx, ny) = (x + dx, y + dy)
                    guard nx >= 0, nx < width, ny >= 0, ny < height else { continue }
                    let q = ny * width + nx
                    if probability[q] > threshold && label[q] == 0 {
                        label[q] = next
                        stack.append(q)
                    }
                }
            }
        }
        guard count >= minimumPixels else { continue }
        let (w, h) = (Double(box.x1 - box.x0 + 1), Double(box.y1 - box.y0 + 1))
        let offset = Int(w * h * unclipRatio / (2 * (w + h)) + 0.5)  // rounded half up, as int(x + 0.5)
        boxes.append(Box(x0: max(box.x0 - offset, 0), y0: max(box.y0 - offset, 0),
                         x1: min(box.x1 + offset, width - 1), y1: min(box.y1 + offset, height - 1)))
    }
    return boxes
}
