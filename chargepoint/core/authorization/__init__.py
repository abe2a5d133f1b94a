"""Authorization of id tokens, version-free: what a token is (`tokens`), the decision in the
order the specifications give it (`decision`), the Local Authorization List (`local_list`) and
reservations (`reservations`). `chargepoint.core.auth.Authorizer` puts them to work with the
settings, the store's authorization cache and the CSMS."""
