// Text detection with the PP-OCRv4 detector embedded in an app: read a page (PPM), normalize it, run the
// bundle, threshold its probability map, turn connected components into boxes and draw them into a copy of
// the page.
//
//     detect-text det.fmb page.ppm boxes.ppm [--preload] [--threshold 0.3]
//
// The bundle is compiled for one page size: fmc compile ppocrv4_det.onnx --input-shape x=1,3,H,W (H and W
// multiples of 32), and the page must be W×H pixels.

import ExampleSupport
import FlashMemRuntime
import Foundation

let usage = "usage: detect-text det.fmb page.ppm boxes.ppm [--preload] [--threshold 0.3]"
var arguments = ExampleArguments(usage: usage)
let preload = arguments.flag("--preload")
var threshold: Float = 0.3
if let text = arguments.option("--threshold") {
    guard let t = Float(text), t > 0, t < 1 else { fail("--threshold expects a probability in (0, 1), got '\(text)'") }
    threshold = t
}
guard arguments.positional.count == 3 else { fail(usage) }
let (bundlePath, pagePath, outputPath) = (arguments.positional[0], arguments.positional[1], arguments.positional[2])

do {
    var page = try RGBImage(ppmPath: pagePath)
    let session = try Session(bundle: try openBundle(path: bundlePath), device: try Device(),
                              options: SessionOptions(loadMode: preload ? .preload : .streaming))
    guard session.inputs.count == 1, session.outputs.count == 1 else {
        fail("\(bundlePath) has \(session.inputs.count) inputs and \(session.outputs.count) outputs; the detector has one of each")
    }
    let input = session.inputs[0]
    guard input.shape == [1, 3, Int64(page.height), Int64(page.width)] else {
        fail("\(bundlePath) takes \(input.name) of shape \(input.shape), but \(pagePath) is \(page.width)×\(page.height); "
             + "compile the detector with --input-shape \(input.name)=1,3,\(page.height),\(page.width)")
    }

    let start = Date()
    let map = try session.run(inputs: [HostTensor(name: input.name, shape: [1, 3, page.height, page.width],
                                                  floats: page.normalizedCHW())])[0]
    let elapsed = Date().timeIntervalSince(start)
    guard map.elementCount == page.width * page.height else {
        fail("\(bundlePath): output \(map.name) has shape \(map.shape); expected one probability per pixel")
    }
    let boxes = textBoxes(probability: map.floats(), width: page.width, height: page.height, threshold: threshold)

    for box in boxes { page.drawRectangle(box, color: (220, 20, 20)) }
    try page.writePPM(to: outputPath)

    print("\(session.bundle.bundle.meta.modelName) on \(session.device.info.name), \(session.options.loadMode.rawValue): "
          + String(format: "%.0f ms", elapsed * 1000) + ", \(page.width)×\(page.height) page")
    print("\(boxes.count) text boxes (probability > \(threshold)), drawn into \(outputPath):")
    for (i, box) in boxes.enumerated() {
        print("  box \(i): x \(box.x0)...\(box.x1), y \(box.y0)...\(box.y1)")
    }
} catch {
    fail("\(error)")
}
