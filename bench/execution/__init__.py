"""Executing a sweep: planning jobs, running them on local workers or Ray, limits and job logs."""
