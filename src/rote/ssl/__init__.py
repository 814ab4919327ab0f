"""Where memorization lives in self-supervised vision encoders: SSLMem, LayerMem, UnitMem, ClassMem."""
