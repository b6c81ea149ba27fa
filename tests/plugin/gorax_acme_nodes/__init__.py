"""Acme's Gorax plugin: node types (``nodes``) and a credential type (``credentials``).

This package stands for a third-party plugin. It is installed beside Gorax (``make test`` does
so) and registered by its entry points alone: no Gorax file names these types. The node types are
a module of their own so that discovering them imports no Prefect.
"""
