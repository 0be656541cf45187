"""Bringing results in from elsewhere: lm-eval result folders (scan), other registries
(merge) and LightML 1.x databases (migrate).
"""
