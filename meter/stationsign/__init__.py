"""Test mode: a meter whose readings the station signs with its own key (never billable)."""
