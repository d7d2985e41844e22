"""results — the documents neuromap hands back, shown as compact tables.

Each is the plain dict the CLI's --format json prints (== compares equal to
json.loads of that output); only printing differs: a text table in a
terminal (repr) and an HTML table in a notebook (_repr_html_).
"""
import html


def _q(token):
    """A token's text in quotes, as the CLI's tables write it."""
    return '"%s"' % token


def _table_text(title, header, rows):
    cols = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cols) for i in range(len(header))]
    lines = [title] if title else []
    for r in cols:
        lines.append("  ".join(c.rjust(w) if i < len(r) - 1 else c for i, (c, w) in enumerate(zip(r, widths))).rstrip())
    return "\n".join(lines)


def _table_html(title, header, rows):
    out = ["<table>"]
    if title:
        out.append("<caption>%s</caption>" % html.escape(title))
    out.append("<tr>%s</tr>" % "".join("<th>%s</th>" % html.escape(h) for h in header))
    for r in rows:
        out.append("<tr>%s</tr>" % "".join("<td>%s</td>" % html.escape(str(c)) for c in r))
    out.append("</table>")
    return "".join(out)


class _Table(dict):
    """A dict shown as a table: subclasses give _title, _header and _rows."""

    def __repr__(self):
        return _table_text(self._title(), self._header(), self._rows())

    def _repr_html_(self):
        return _table_html(self._title(), self._header(), self._rows())


class NeuronResult(_Table):
    """One decoded neuron: `show --format json`'s document."""

    def _title(self):
        t = "%s %d:%d  (norm %s" % (self["matrix"], self["layer"], self["neuron"], self.get("norm", "?"))
        if self.get("nonfinite"):
            return t + "): non-finite weights"
        return t + ", log-sum-exp %.4f)" % self["lse"]

    def _header(self):
        return ["rank", "token_id", "logit", "prob", "token"]

    def _rows(self):
        return [[t["rank"], t["token_id"], "%.5f" % t["logit"], "%.4g" % t["prob"], _q(t["token"])]
                for t in self.get("top", []) + self.get("bottom", [])]


class FindResult(_Table):
    """The neurons that promote a token: `find --format json`'s document."""

    def _title(self):
        tok = self["token"]
        return "token %d %s (%s, norm %s, from the %s)" % (tok["token_id"], _q(tok["token"]), self["matrix"], self["norm"],
                                                          self["source"])

    def _header(self):
        h = ["matrix", "layer", "neuron", "logit", "rank", "top_token"]
        return h + ["partner", "partner_top", "agree"] if self._agreement() else h

    def _agreement(self):
        return any("partner" in n for n in self["neurons"])

    def _rows(self):
        rows = []
        for n in self["neurons"]:
            r = [n["matrix"], n["layer"], n["neuron"], "%.5f" % n["logit"], n["rank"], _q(n["top"]["token"])]
            if "partner" in n:
                p = n["partner"]
                r += [p["matrix"], _q(p["top"]["token"]), "yes" if p["agree"] else "no"]
            rows.append(r)
        return rows


class InfoResult(_Table):
    """`info --format json`'s document."""

    def _title(self):
        return ""

    def _header(self):
        return ["key", "value"]

    def _rows(self):
        return [[k, v] for k, v in self.items()]


class MapResult(dict):
    """Arrays of a map, one row per neuron in map's order: "layer", "neuron"
    (int32, neurons), "ids", "logits", "probs" (neurons × top_k), "bottom_ids",
    "bottom_logits", "bottom_probs" (neurons × bottom_k, bottom_ids[:, 0] the
    lowest logit), "lse" (float64) and "nonfinite" (bool). Keys are also
    attributes: m.ids."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self):
        n, k = self["ids"].shape
        return "MapResult(%s, %d neurons, top %d, bottom %d)" % (self["matrix"], n, k, self["bottom_ids"].shape[1])

    def _repr_html_(self):
        rows = [[int(self["layer"][i]), int(self["neuron"][i]), " ".join(str(int(t)) for t in self["ids"][i][:5])]
                for i in range(min(len(self["ids"]), 20))]
        return _table_html(repr(self), ["layer", "neuron", "top ids"], rows)


class GenerateResult(dict):
    """`generate --compare --format json`'s document: the baseline
    continuation and, with hooks, the hooked one beside it."""

    def _runs(self):
        runs = [("baseline", self["baseline"])]
        if "clamped" in self:
            runs.append(("clamped (%s)" % ", ".join(self["hooks"]["hooks"]), self["clamped"]))
        return runs

    def __repr__(self):
        return "\n\n".join("=== %s\n%s" % (name, r["text"]) for name, r in self._runs())

    def _repr_html_(self):
        return _table_html("", [name for name, _ in self._runs()], [[r["text"] for _, r in self._runs()]])
