"""The four lines: open a registry, register a model, log a metric, read it back.

Run: python examples/quickstart.py  (creates ./quickstart.db)
"""

from lightml import LightMLHandle

with LightMLHandle("quickstart.db", run_name="first-run") as h:
    h.register_model("gpt2-small", "openai-community/gpt2")
    h.log_model_metric("gpt2-small", "hellaswag", "acc_norm", 0.3113, scores=[1, 0, 0, 1, 0])
    print(h.search("gpt2*"))
    print(h.metric_history("gpt2-small", "hellaswag", "acc_norm"))
