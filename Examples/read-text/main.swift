// Full OCR of a page with three trained models in turn, under one device context and one memory budget: the
// PP-OCRv4 detector finds the text boxes, the direction classifier says which crops are upside down (turned
// 180° where it says "180" with a score above 0.9), and the PP-OCRv4 recognizer reads each crop, decoded by
// greedy CTC over the recognizer's character dictionary. Prints the lines in reading order with their boxes,
// the budget, the context's peak device memory and each model's latency; draws the boxes into a copy of the page.
//
//     read-text det.fmb cls.fmb rec.fmb keys.txt page.ppm boxes.ppm [--memory-budget 64MiB] [--preload]
//               [--threshold 0.3] [--dump DIR]
//
// Compile with fixed shapes: the detector for the page (--input-shape x=1,3,H,W, H and W multiples of 32), the
// classifier as PaddleOCR feeds it (x=1,3,48,192), the recognizer at height 48 and the widest line it reads
// (x=1,3,48,320; a longer line is squeezed into it). keys.txt is the recognizer's dictionary, one character per
// line: the ONNX file's `character` metadata (`python Examples/check_examples.py ocr-files DIR` writes it).
//
// --dump DIR writes every model's input and output as .npy (det_input, det_output, cls_input [N, 3, 48, 192],
// cls_output [N, 2], rec_input, rec_output [N, T, classes]; N lines in reading order) and summary.json (boxes,
// texts, scores, budget, peak memory, latencies) for checking against onnxruntime (Examples/check_examples.py).

import ExampleSupport
import FlashMemRuntime
import Foundation

let usage = "usage: read-text det.fmb cls.fmb rec.fmb keys.txt page.ppm boxes.ppm [--memory-budget 64MiB] [--preload]\n"
    + "                 [--threshold 0.3] [--dump DIR]"
var arguments = ExampleArguments(usage: usage)
let preload = arguments.flag("--preload")
let dump = arguments.option("--dump")
let budgetText = arguments.option("--memory-budget") ?? "64MiB"
guard let budget = ByteSize.parse(budgetText) else { fail("--memory-budget expects a size such as 64MiB, got '\(budgetText)'") }
var threshold: Float = 0.3
if let text = arguments.option("--threshold") {
    guard let t = Float(text), t > 0, t < 1 else { fail("--threshold expects a probability in (0, 1), got '\(text)'") }
    threshold = t
}
guard arguments.positional.count == 6 else { fail(usage) }
let (detPath, clsPath, recPath, keysPath, pagePath, outputPath) = (
    arguments.positional[0], arguments.positional[1], arguments.positional[2],
    arguments.positional[3], arguments.positional[4], arguments.positional[5])
/// PaddleOCR's classifier threshold: a crop is turned only when "180" wins with more than this.
let rotateAbove: Float = 0.9

/// One recognized line: its box on the page, whether it was turned, and what the models said.
struct Line: Codable {
    var box: [Int]  // x0, y0, x1, y1 (inclusive)
    var rotated: Bool
    var classifierScore: Float  // the winning label's probability
    var text: String
    var score: Float
}

/// What --dump writes as summary.json besides the tensors.
struct Summary: Codable {
    struct Model: Codable {
        var role: String, bundle: String, footprintBytes: UInt64, runs: Int, seconds: Double, acquisitions: Int
    }
    var budgetBytes: UInt64
    var peakBytes: UInt64
    var poolBytes: UInt64
    var evictions: Int
    var models: [Model]
    var lines: [Line]
}

func mib(_ bytes: UInt64) -> String { String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1000) }

do {
    var page = try RGBImage(ppmPath: pagePath)
    let dictionary = try CharacterDictionary(path: keysPath)
    let context = DeviceContext(device: try Device(), budgetBytes: budget)
    let options = SessionOptions(loadMode: preload ? .preload : .streaming)
    let det = try ChainModel(role: "det", path: detPath, context: context, options: options,
                             expected: (page.height, page.width),
                             compileHint: "compile the detector with --input-shape x=1,3,\(page.height),\(page.width) "
                                 + "for the \(page.width)×\(page.height) page \(pagePath)")
    let cls = try ChainModel(role: "cls", path: clsPath, context: context, options: options,
                             compileHint: "compile the classifier with --input-shape x=1,3,48,192")
    let rec = try ChainModel(role: "rec", path: recPath, context: context, options: options,
                             compileHint: "compile the recognizer with --input-shape x=1,3,48,320")
    guard det.outputShape.reduce(1, *) == page.width * page.height else {
        fail("\(detPath) (det): output of shape \(det.outputShape); expected one probability per pixel of the page")
    }
    guard cls.outputShape == [1, 2] else {
        fail("\(clsPath) (cls): output of shape \(cls.outputShape); expected [1, 2] (the labels 0 and 180)")
    }
    let recShape = rec.outputShape
    guard recShape.count == 3, recShape[0] == 1, recShape[2] == dictionary.classes.count else {
        fail("\(recPath) (rec): output of shape \(recShape); expected [1, steps, \(dictionary.classes.count)]: the "
             + "\(dictionary.classes.count - 2) characters of \(keysPath), the CTC blank and a space. Is \(keysPath) "
             + "this recognizer's dictionary?")
    }
    let steps = recShape[1]

    // 1. Detector: probability map → boxes, in reading order.
    let start = Date()
    let detInput = page.normalizedCHW()
    let map = try det.run(detInput)
    let boxes = readingOrder(textBoxes(probability: map.floats(), width: page.width, height: page.height, threshold: threshold))
    var crops = boxes.map { page.cropped(to: $0) }

    // 2. Classifier on every crop; the upside-down ones are turned.
    var clsInputs: [Float] = [], clsOutputs: [Float] = []
    var lines: [Line] = []
    for (i, box) in boxes.enumerated() {
        let input = crops[i].textLineInput(height: cls.height, width: cls.width)
        let probabilities = try cls.run(input).floats()
        let rotated = probabilities[1] > probabilities[0] && probabilities[1] > rotateAbove
        if rotated { crops[i] = crops[i].rotated180() }
        clsInputs += input
        clsOutputs += probabilities
        lines.append(Line(box: [box.x0, box.y0, box.x1, box.y1], rotated: rotated,
                          classifierScore: probabilities.max()!, text: "", score: 0))
    }

    // 3. Recognizer on every (turned) crop, CTC-decoded.
    var recInputs: [Float] = [], recOutputs: [Float] = []
    for i in boxes.indices {
        let input = crops[i].textLineInput(height: rec.height, width: rec.width)
        let probabilities = try rec.run(input).floats()
        (lines[i].text, lines[i].score) = dictionary.decode(probabilities, steps: steps)
        recInputs += input
        recOutputs += probabilities
    }
    let elapsed = Date().timeIntervalSince(start)

    for box in boxes { page.drawRectangle(box, color: (220, 20, 20)) }
    try page.writePPM(to: outputPath)

    let models = [det, cls, rec]
    let memory = context.memory
    print("read-text on \(context.device.info.name), \(options.loadMode.rawValue): det → cls → rec in one device context, "
          + "budget \(mib(budget))")
    for model in models {
        print("  \(model.role) \(model.modelName): input \(model.inputName) [1, 3, \(model.height), \(model.width)], "
              + "footprint \(mib(model.session.footprintBytes)) (arena + weights)")
    }
    print("\(lines.count) text lines in reading order (probability > \(threshold); boxes drawn into \(outputPath)):")
    for (i, line) in lines.enumerated() {
        let turned = line.rotated ? String(format: "rotated 180° (cls %.3f), ", line.classifierScore) : ""
        print("  line \(i): x \(line.box[0])...\(line.box[2]), y \(line.box[1])...\(line.box[3]), \(turned)"
              + String(format: "score %.3f: ", line.score) + line.text)
    }
    print("latency:          " + models.map { "\($0.role) \(ms($0.seconds)) (\($0.runs) run\($0.runs == 1 ? "" : "s"))" }
        .joined(separator: ", ") + ", chain \(ms(elapsed)) (page in → text out)")
    print("device memory:    peak \(mib(memory.peakBytes)) of the \(mib(budget)) budget (own accounting: arenas + "
          + "weight spaces), pool \(mib(memory.poolBytes)); a model's memory taken back for another "
          + "\(memory.evictions)× (\(mib(memory.evictedBytes))); acquisitions "
          + models.map { "\($0.role) \($0.acquisitions)" }.joined(separator: ", "))

    if let dump {
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: true)
        let n = lines.count
        let tensors: [(String, [Int], [Float])] = [
            ("det_input", [1, 3, page.height, page.width], detInput),
            ("det_output", map.shape, map.floats()),
            ("cls_input", [n, 3, cls.height, cls.width], clsInputs),
            ("cls_output", [n, 2], clsOutputs),
            ("rec_input", [n, 3, rec.height, rec.width], recInputs),
            ("rec_output", [n, steps, dictionary.classes.count], recOutputs),
        ]
        for (name, shape, values) in tensors {
            try NPY.write(HostTensor(name: name, shape: shape, floats: values), path: "\(dump)/\(name).npy")
        }
        let summary = Summary(budgetBytes: budget, peakBytes: memory.peakBytes, poolBytes: memory.poolBytes,
                              evictions: memory.evictions,
                              models: models.map { .init(role: $0.role, bundle: $0.path, footprintBytes: $0.session.footprintBytes,
                                                         runs: $0.runs, seconds: $0.seconds, acquisitions: $0.acquisitions) },
                              lines: lines)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard FileManager.default.createFile(atPath: "\(dump)/summary.json", contents: try encoder.encode(summary)) else {
            fail("\(dump)/summary.json: cannot write the file")
        }
    }
} catch {
    fail("\(error)")
}
