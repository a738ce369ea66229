// Sentence similarity with all-MiniLM-L6-v2 embedded in an app: tokenize each sentence with BERT's WordPiece
// over the model's vocab.txt, run the bundle once per sentence, mean-pool the last hidden state over the
// attention mask, L2-normalize, and print the cosine-similarity matrix.
//
//     sentence-similarity model.fmb vocab.txt SENTENCE... [--preload] [--dump DIR]
//     sentence-similarity --tokenize vocab.txt TEXT...        (token ids only, one JSON array per line)
//
// --dump DIR writes ids.npy (int64 [S, L]), mask.npy and embeddings.npy (float32 [S, H]) for checking
// against a reference (Examples/check_examples.py).

import ExampleSupport
import FlashMemRuntime
import Foundation

let usage = "usage: sentence-similarity model.fmb vocab.txt SENTENCE... [--preload] [--dump DIR]\n"
    + "       sentence-similarity --tokenize vocab.txt TEXT..."
var commandLine = ExampleArguments(usage: usage)

/// Mean of the rows of `hidden` ([L, H], row-major) whose mask is 1, then scaled to unit length.
func meanPooled(_ hidden: [Float], mask: [Int64], width: Int) -> [Float] {
    var sum = [Float](repeating: 0, count: width)
    for (row, m) in mask.enumerated() where m != 0 {
        for j in 0..<width { sum[j] += hidden[row * width + j] }
    }
    let count = Float(max(mask.filter { $0 != 0 }.count, 1))
    let mean = sum.map { $0 / count }
    let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
    return mean.map { $0 / norm }
}

func dot(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

do {
    if commandLine.flag("--tokenize") {
        let arguments = commandLine.positional
        guard arguments.count >= 2 else { fail(usage) }
        let tokenizer = try WordPieceTokenizer(vocabPath: arguments[0])
        for text in arguments.dropFirst() {
            let ids = [tokenizer.classifier] + tokenizer.basicTokens(text).flatMap(tokenizer.wordPieces) + [tokenizer.separator]
            print("[" + ids.map(String.init).joined(separator: ", ") + "]")
        }
        exit(0)
    }
    let preload = commandLine.flag("--preload")
    let dump = commandLine.option("--dump")
    let arguments = commandLine.positional
    guard arguments.count >= 4 else { fail("give at least two sentences\n\(usage)") }
    let (bundlePath, vocabPath, sentences) = (arguments[0], arguments[1], Array(arguments.dropFirst(2)))

    let tokenizer = try WordPieceTokenizer(vocabPath: vocabPath)
    let session = try Session(bundle: try openBundle(path: bundlePath), device: try Device(),
                              options: SessionOptions(loadMode: preload ? .preload : .streaming))
    func binding(_ name: String, in list: [IOBinding], _ kind: String) -> IOBinding {
        guard let b = list.first(where: { $0.name == name }) else {
            fail("\(bundlePath) has no \(kind) '\(name)' (it has \(list.map(\.name).joined(separator: ", "))); "
                 + "is it a BERT encoder compiled from the corpus's minilm_l6_v2.onnx?")
        }
        return b
    }
    let idsInput = binding("input_ids", in: session.inputs, "input")
    guard idsInput.shape.count == 2, idsInput.shape[0] == 1 else {
        fail("\(bundlePath): input_ids has shape \(idsInput.shape); expected [1, sequence length]")
    }
    let length = Int(idsInput.shape[1])
    guard length >= 2 else { fail("\(bundlePath): input_ids holds \(length) tokens; [CLS] and [SEP] alone need 2") }
    let hasTokenTypes = session.inputs.contains { $0.name == "token_type_ids" }
    let hiddenOutput = binding("last_hidden_state", in: session.outputs, "output")
    let width = Int(hiddenOutput.shape.last ?? 0)

    var embeddings: [[Float]] = []
    var allIds: [Int64] = [], allMasks: [Int64] = []
    var seconds = 0.0
    for sentence in sentences {
        let (ids, mask) = tokenizer.encode(sentence, length: length)
        var inputs = [HostTensor(name: "input_ids", shape: [1, length], int64s: ids),
                      HostTensor(name: "attention_mask", shape: [1, length], int64s: mask)]
        if hasTokenTypes {
            inputs.append(HostTensor(name: "token_type_ids", shape: [1, length], int64s: [Int64](repeating: 0, count: length)))
        }
        let start = Date()
        let outputs = try session.run(inputs: inputs)
        seconds += Date().timeIntervalSince(start)
        guard let hidden = outputs.first(where: { $0.name == hiddenOutput.name }) else {
            fail("\(bundlePath): the run returned no \(hiddenOutput.name)")
        }
        embeddings.append(meanPooled(hidden.floats(), mask: mask, width: width))
        allIds += ids
        allMasks += mask
    }

    print("\(session.bundle.bundle.meta.modelName) on \(session.device.info.name), \(session.options.loadMode.rawValue): "
          + "\(sentences.count) sentences in " + String(format: "%.0f ms", seconds * 1000))
    for (i, sentence) in sentences.enumerated() {
        print("  [\(i)] \(sentence)  (\(allMasks[(i * length)..<((i + 1) * length)].filter { $0 != 0 }.count) tokens)")
    }
    print("cosine similarity:")
    print("     " + sentences.indices.map { String(format: "%7d", $0) }.joined())
    for i in sentences.indices {
        print(String(format: "  %2d ", i) + sentences.indices.map { String(format: "%7.3f", dot(embeddings[i], embeddings[$0])) }.joined())
    }
    var best = (0, 1, -Float.infinity)
    for i in sentences.indices { for j in sentences.indices where j > i && dot(embeddings[i], embeddings[j]) > best.2 {
        best = (i, j, dot(embeddings[i], embeddings[j]))
    } }
    print("most similar: [\(best.0)] and [\(best.1)], cosine " + String(format: "%.3f", best.2))

    if let dump {
        try FileManager.default.createDirectory(atPath: dump, withIntermediateDirectories: true)
        try NPY.write(HostTensor(name: "ids", shape: [sentences.count, length], int64s: allIds), path: dump + "/ids.npy")
        try NPY.write(HostTensor(name: "mask", shape: [sentences.count, length], int64s: allMasks), path: dump + "/mask.npy")
        try NPY.write(HostTensor(name: "embeddings", shape: [sentences.count, width], floats: embeddings.flatMap { $0 }),
                      path: dump + "/embeddings.npy")
    }
} catch {
    fail("\(error)")
}
