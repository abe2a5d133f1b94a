"""The `chargepoint` command line (`chargepoint.cli.main`): one module per command group.

Nothing else in the project imports from this package; it sits on top of the service, the
CSMS adapters, the core, the store and the meter layer.
"""
