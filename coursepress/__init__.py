"""coursepress: what every course's notebooks may use, shipped with the tooling.

Like a course's own helpers, each module here is *inlined* by the build into the notebooks that
import it (`from coursepress.NAME import ...` on a line of its own), so a notebook opened on Colab or
a laptop needs nothing from the tooling. Modules therefore import only the standard library,
third-party packages the notebook already needs, or other `coursepress` modules.

- `coursepress.plots`: the offline plotly renderer used while the site is built (plotly.js served
  once by the site, no CDN) and each figure's text caption.
- `coursepress.results`: `save_results(section, metrics)`, a section's headline numbers as JSON.
- `coursepress.testing`: assertions whose messages tell a student what is wrong (numbers, lists,
  numpy arrays, torch tensors; torch is never required).
"""
