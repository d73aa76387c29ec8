"""The built-in analysis specs: each module here registers its :class:`AnalysisSpec`\\ s.

:func:`geocluster.analyses.spec.load_builtin` imports every module of this package, so a
new analysis is one new module here (its ``Params`` and ``run``), its pure computation
and its test. Modules import only pydantic at the top; ``run`` imports the rest.
"""
