// Embedding the FlashMem runtime in an app: open a bundle, make a session, run an image through it and
// print the top classes. The app ships the .fmb file as a build artifact; nothing here parses ONNX or
// compiles shaders.
//
//     classify-image model.fmb image.npy [--preload] [--top K]

import FlashMemRuntime
import Foundation

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("classify-image: \(message)\n".utf8))
    exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
let preload = arguments.contains("--preload")
arguments.removeAll { $0 == "--preload" }
var top = 5
if let index = arguments.firstIndex(of: "--top") {
    guard index + 1 < arguments.count, let k = Int(arguments[index + 1]), k > 0 else { fail("--top expects a positive count") }
    top = k
    arguments.removeSubrange(index...(index + 1))
}
guard arguments.count == 2 else { fail("usage: classify-image model.fmb image.npy [--preload] [--top K]") }

do {
    let bundle = try openBundle(path: arguments[0])
    let device = try Device()
    let session = try Session(bundle: bundle, device: device,
                              options: SessionOptions(loadMode: preload ? .preload : .streaming))
    guard session.inputs.count == 1, session.outputs.count == 1 else {
        fail("\(arguments[0]) has \(session.inputs.count) inputs and \(session.outputs.count) outputs; an image classifier has one of each")
    }
    var image = try NPY.read(path: arguments[1])
    image.name = session.inputs[0].name

    let start = Date()
    let scores = try session.run(inputs: [image])[0].floats()
    let elapsed = Date().timeIntervalSince(start)

    let ranked = scores.indices.sorted { scores[$0] > scores[$1] }.prefix(top)
    print("\(session.bundle.bundle.meta.modelName) on \(device.info.name), \(session.options.loadMode.rawValue): "
          + String(format: "%.2f ms", elapsed * 1000))
    for (rank, index) in ranked.enumerated() {
        print(String(format: "  %d. class %4d  score %.5f", rank + 1, index, scores[index]))
    }
} catch {
    fail("\(error)")
}
