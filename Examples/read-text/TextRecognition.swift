// The host side of PP-OCR's classifier and recognizer: a crop into their input, the recognizer's character
// dictionary, and greedy CTC decoding of its output. The rules are PaddleOCR's (rapidocr 1.4.4 runs the same), and
// Examples/check_examples.py writes them again for its onnxruntime run of the chain.

import ExampleSupport
import Foundation

extension RGBImage {
    /// The classifier's and the recognizer's input, CHW float32 [3, height, width]: the image resized to `height`
    /// rows and ceil(height · w / h) columns (at most `width`: a longer line is squeezed), each value
    /// (v / 255 − 0.5) / 0.5, and zeros on the right up to `width` (PaddleOCR's resize_norm_img).
    func textLineInput(height: Int, width: Int) -> [Float] {
        let ratio = Double(self.width) / Double(self.height)
        let resizedWidth = min(Int((Double(height) * ratio).rounded(.up)), width)
        let resized = resized(width: resizedWidth, height: height)
        var out = [Float](repeating: 0, count: 3 * height * width)
        for c in 0..<3 {
            for y in 0..<height {
                for x in 0..<resizedWidth {
                    let value = Float(resized.pixels[(y * resizedWidth + x) * 3 + c]) / 255
                    out[(c * height + y) * width + x] = (value - 0.5) / 0.5
                }
            }
        }
        return out
    }
}

/// The recognizer's classes: index 0 the CTC blank, then the dictionary's characters in order, then a space
/// (PaddleOCR's CTCLabelDecode with use_space_char).
struct CharacterDictionary {
    let classes: [String]

    /// Reads a dictionary file: one character per line, UTF-8 (PaddleOCR's ppocr_keys_v1.txt, or the recognizer
    /// ONNX's `character` metadata written to a file). Lines end with "\n" or "\r\n"; an empty last line is no entry.
    init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecognitionError("\(path): cannot read the character dictionary")
        }
        // Split the bytes, not the String: Swift reads "\r\n" as one Character.
        var lines = [UInt8](data).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { line in
            line.last == UInt8(ascii: "\r") ? line.dropLast() : line
        }
        if lines.last?.isEmpty == true { lines.removeLast() }
        var characters: [String] = []
        for (number, line) in lines.enumerated() {
            guard let text = String(bytes: line, encoding: .utf8) else {
                throw RecognitionError("\(path): line \(number + 1) is not UTF-8")
            }
            characters.append(text)
        }
        guard !characters.isEmpty else { throw RecognitionError("\(path): the character dictionary is empty") }
        classes = ["blank"] + characters + [" "]
    }

    /// Greedy CTC decoding of `probabilities` ([steps, classes], row-major, each row a distribution): the most
    /// likely class of each step, repeats merged, blanks dropped. The score is the mean probability of the kept
    /// steps (0 when none is kept), as rapidocr reports it.
    func decode(_ probabilities: [Float], steps: Int) -> (text: String, score: Float) {
        let count = classes.count
        precondition(probabilities.count == steps * count, "decode: \(probabilities.count) values for \(steps) × \(count)")
        var text = "", kept: [Float] = [], previous = -1
        for step in 0..<steps {
            let row = probabilities[(step * count)..<((step + 1) * count)]
            var best = row.startIndex
            for i in row.indices where row[i] > row[best] { best = i }  // the first maximum, as numpy's argmax
            let index = best - row.startIndex
            if index != 0 && index != previous {
                text += classes[index]
                kept.append(row[best])
            }
            previous = index
        }
        return (text, kept.isEmpty ? 0 : kept.reduce(0, +) / Float(kept.count))
    }
}

struct RecognitionError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
