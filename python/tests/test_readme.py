"""The README's Python example runs as written, and says what it prints."""
import os
import re
import sys
import types

from conftest import ROOT, SHARED


def readme_example():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text[text.index("## From Python"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example(monkeypatch, capsys):
    code = readme_example().replace('"../shared/', '"%s/' % SHARED)
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:  # Debian's python3-matplotlib is optional: a stand-in that records the plot
        plt = types.ModuleType("matplotlib.pyplot")
        plt.calls = []
        for name in ("plot", "xlabel", "ylabel", "show"):
            setattr(plt, name, lambda *a, _n=name, **k: plt.calls.append((_n, a)))
        mpl = types.ModuleType("matplotlib")
        mpl.pyplot = plt
        monkeypatch.setitem(sys.modules, "matplotlib", mpl)
        monkeypatch.setitem(sys.modules, "matplotlib.pyplot", plt)
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    out = capsys.readouterr().out
    assert ns["layer"].ids.shape == (172, 10) and ns["layer"].ids[38][0] == 317  # " Lily"
    assert (ns["L"], ns["N"]) == (1, 0) and "up 1:0" in out and "=== clamped (clamp 1:0=8)" in out
    assert len(ns["probs"]) == 11 and ns["probs"][-1] > ns["probs"][0] + 0.1
