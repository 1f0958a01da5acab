"""Shared by the parity tests (tests/parity)."""
def report(what: str, error: float, bound: float, kind: str = "abs") -> None:
    """Prints one comparison (make parity shows them) and asserts it is within its bound."""
    print(f"\nPARITY {what}: max {kind} error {error:.3g} (bound {bound:g})", flush=True)
    assert error <= bound, f"{what}: max {kind} error {error:.3g} > {bound:g}"
