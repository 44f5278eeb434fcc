"""Shipped topologies: YAML definitions in this folder, and builders for parametric families.

`cdnlab.topology.load_topology("two_isp_ixp")` finds `two_isp_ixp.yaml` here; a YAML file
with `family: isp_mesh` is expanded by `families.build` before validation.
"""
