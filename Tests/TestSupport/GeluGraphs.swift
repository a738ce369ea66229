// GELU as exporters decompose it (opset < 20 has no Gelu op), for the tests of LoweringPasses.recognizeGelu:
// torch's exact nn.GELU and Hugging Face's tanh "gelu_new" (GPT-2, GPT-Neo), node for node as they export.

import FlashMemCompiler

extension GraphBuilder {
    /// y = x · 0.5 · (1 + erf(x / √2)): Div, Erf, Add, Mul, Mul. `half` replaces the 0.5 (a wrong one must not match);
    /// `float16`: the constants are float16 initializers (an fp16 export's).
    public mutating func decomposedGelu(_ x: String, _ y: String, _ shape: [Int], half: Float = 0.5, prefix: String = "g",
                                        float16: Bool = false) {
        scalar("\(prefix).sqrt2", 1.4142135, float16: float16)
        scalar("\(prefix).one", 1, float16: float16)
        scalar("\(prefix).half", half, float16: float16)
        node("Div", [x, "\(prefix).sqrt2"], "\(prefix).d", shape)
        node("Erf", ["\(prefix).d"], "\(prefix).e", shape)
        node("Add", ["\(prefix).e", "\(prefix).one"], "\(prefix).a", shape)
        node("Mul", [x, "\(prefix).a"], "\(prefix).m", shape)
        node("Mul", ["\(prefix).m", "\(prefix).half"], y, shape)
    }

    /// y = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))): Mul, Pow, Mul, Add, Mul, Tanh, Add, Mul. `float16`: the
    /// constants are float16 initializers (GPT-Neo's fp16 export: √(2/π) and 0.044715 rounded).
    public mutating func decomposedGeluTanh(_ x: String, _ y: String, _ shape: [Int], prefix: String = "t",
                                            float16: Bool = false) {
        scalar("\(prefix).half", 0.5, float16: float16)
        scalar("\(prefix).three", 3, float16: float16)
        scalar("\(prefix).c", 0.044715, float16: float16)
        scalar("\(prefix).s", 0.7978845608, float16: float16)
        scalar("\(prefix).one", 1, float16: float16)
        node("Mul", ["\(prefix).half", x], "\(prefix).hx", shape)
        node("Pow", [x, "\(prefix).three"], "\(prefix).x3", shape)
        node("Mul", ["\(prefix).c", "\(prefix).x3"], "\(prefix).cx3", shape)
        node("Add", [x, "\(prefix).cx3"], "\(prefix).inner", shape)
        node("Mul", ["\(prefix).s", "\(prefix).inner"], "\(prefix).scaled", shape)
        node("Tanh", ["\(prefix).scaled"], "\(prefix).th", shape)
        node("Add", ["\(prefix).one", "\(prefix).th"], "\(prefix).onep", shape)
        node("Mul", ["\(prefix).hx", "\(prefix).onep"], y, shape)
    }

    private mutating func scalar(_ name: String, _ value: Float, float16: Bool) {
        if float16 { halfConstant(name, [], [value]) } else { constant(name, [], [value]) }
    }
}
