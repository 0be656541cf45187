"""Answers turned into text and files: terminal formatting and the Excel report."""
