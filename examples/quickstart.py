"""The four lines: open a registry, register a model, log a metric, read it back.

Run: python examples/quickstart.py  (creates ./quickstart.db)

The per-sample scores (1 = the document was answered right) are what ``lightml stats``
pairs between models; the value logged with them is their mean, so the two agree.
"""

from lightml import LightMLHandle

scores = [1, 0, 0, 1, 0, 0, 1, 0, 0, 0]  # one per document of the benchmark

with LightMLHandle("quickstart.db", run_name="first-run") as h:
    h.register_model("gpt2-small", "openai-community/gpt2")
    h.log_model_metric("gpt2-small", "hellaswag", "acc_norm", sum(scores) / len(scores), scores=scores)
    print(h.search("gpt2*"))
    print(h.metric_history("gpt2-small", "hellaswag", "acc_norm"))
