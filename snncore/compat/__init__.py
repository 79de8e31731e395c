"""Compatibility namespaces: port code written for another library by changing one import.

``from snncore.compat import norse`` gives the reference library's module paths
(``norse.torch.LIFCell``, ``norse.torch.functional.lif.lif_step``, ...) mapped to snncore's own
classes and functions (docs/porting-from-norse.md).  Nothing here is imported by ``import
snncore``: a namespace costs nothing until it is used.
"""
