"""Static shapes of symbolic tensors against the shapes their evaluations had."""


def check_static_shape(static: tuple, shapes: list) -> None:
    """Known dimensions of `static` equal every evaluated shape's; a dimension that varied
    between evaluations is unknown (None)."""
    assert all(len(static) == len(s) for s in shapes), (static, shapes)
    for i, n in enumerate(static):
        assert n is None or all(n == s[i] for s in shapes), (static, shapes)
        if len({s[i] for s in shapes}) > 1:
            assert n is None, (static, shapes)
