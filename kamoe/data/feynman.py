"""The 100 AI Feynman equations (Udrescu & Tegmark 2020) as a hand-written registry plus a sampler.

Each entry is written out here from the published equations: output name, formula (in sympy syntax,
sometimes in an algebraically equivalent form, e.g. ``h/(2*pi)`` folded into the constants), the
variables in the order of the benchmark's data files, and their uniform sampling ranges. IDs follow
the ``Filename`` column of ``FeynmanEquations.csv`` (``I.15.1``, ``I.34.1``, ``I.39.1``,
``I.48.2``);
the lecture numbers ``I.15.10``, ``I.34.10``, ``I.39.10``, ``I.48.20`` are accepted as aliases.

Formulas are parsed once with an explicit dict mapping every variable name to a plain
``sympy.Symbol`` (no assumptions), so names such as ``I``, ``gamma`` or ``beta`` never turn into
sympy's imaginary unit or special functions, and so that a formula recovered by a model over
``sympy.Symbol(name)`` cancels exactly against the ground truth.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
from sympy.parsing.sympy_parser import parse_expr

from kamoe.data.dataset import Affine, DataError, Dataset

# (id, output, formula, "name low high, ...", short title)
_ENTRIES: list[tuple[str, str, str, str, str]] = [
    ("I.6.2a", "f", "exp(-theta**2/2)/sqrt(2*pi)", "theta 1 3", "standard normal density"),
    ("I.6.2", "f", "exp(-theta**2/(2*sigma**2))/(sigma*sqrt(2*pi))", "sigma 1 3, theta 1 3",
     "normal density with width sigma"),
    ("I.6.2b", "f", "exp(-(theta - theta1)**2/(2*sigma**2))/(sigma*sqrt(2*pi))",
     "sigma 1 3, theta 1 3, theta1 1 3", "shifted normal density"),
    ("I.8.14", "d", "sqrt((x2 - x1)**2 + (y2 - y1)**2)", "x1 1 5, x2 1 5, y1 1 5, y2 1 5",
     "distance between two points"),
    ("I.9.18", "F", "G*m1*m2/((x2 - x1)**2 + (y2 - y1)**2 + (z2 - z1)**2)",
     "m1 1 2, m2 1 2, G 1 2, x1 3 4, x2 1 2, y1 3 4, y2 1 2, z1 3 4, z2 1 2",
     "Newtonian gravitation"),
    ("I.10.7", "m", "m_0/sqrt(1 - v**2/c**2)", "m_0 1 5, v 1 2, c 3 10", "relativistic mass"),
    ("I.11.19", "A", "x1*y1 + x2*y2 + x3*y3", "x1 1 5, x2 1 5, x3 1 5, y1 1 5, y2 1 5, y3 1 5",
     "dot product"),
    ("I.12.1", "F", "mu*Nn", "mu 1 5, Nn 1 5", "friction force"),
    ("I.12.2", "F", "q1*q2/(4*pi*epsilon*r**2)", "q1 1 5, q2 1 5, epsilon 1 5, r 1 5",
     "Coulomb's law"),
    ("I.12.4", "Ef", "q1/(4*pi*epsilon*r**2)", "q1 1 5, epsilon 1 5, r 1 5",
     "field of a point charge"),
    ("I.12.5", "F", "q2*Ef", "q2 1 5, Ef 1 5", "force on a charge in a field"),
    ("I.12.11", "F", "q*(Ef + B*v*sin(theta))", "q 1 5, Ef 1 5, B 1 5, v 1 5, theta 1 5",
     "Lorentz force"),
    ("I.13.4", "K", "m*(v**2 + u**2 + w**2)/2", "m 1 5, v 1 5, u 1 5, w 1 5", "kinetic energy"),
    ("I.13.12", "U", "G*m1*m2*(1/r2 - 1/r1)", "m1 1 5, m2 1 5, r1 1 5, r2 1 5, G 1 5",
     "gravitational potential energy difference"),
    ("I.14.3", "U", "m*g*z", "m 1 5, g 1 5, z 1 5", "potential energy near the ground"),
    ("I.14.4", "U", "k_spring*x**2/2", "k_spring 1 5, x 1 5", "spring potential energy"),
    ("I.15.3x", "x1", "(x - u*t)/sqrt(1 - u**2/c**2)", "x 5 10, u 1 2, c 3 20, t 1 2",
     "Lorentz transformation of position"),
    ("I.15.3t", "t1", "(t - u*x/c**2)/sqrt(1 - u**2/c**2)", "x 1 5, c 3 10, u 1 2, t 1 5",
     "Lorentz transformation of time"),
    ("I.15.1", "p", "m_0*v/sqrt(1 - v**2/c**2)", "m_0 1 5, v 1 2, c 3 10",
     "relativistic momentum"),
    ("I.16.6", "v1", "(u + v)/(1 + u*v/c**2)", "c 1 5, v 1 5, u 1 5",
     "relativistic velocity addition"),
    ("I.18.4", "r", "(m1*r1 + m2*r2)/(m1 + m2)", "m1 1 5, m2 1 5, r1 1 5, r2 1 5",
     "centre of mass"),
    ("I.18.12", "tau", "r*F*sin(theta)", "r 1 5, F 1 5, theta 0 5", "torque"),
    ("I.18.14", "L", "m*r*v*sin(theta)", "m 1 5, r 1 5, v 1 5, theta 1 5", "angular momentum"),
    ("I.24.6", "E_n", "m*(omega**2 + omega_0**2)*x**2/4", "m 1 3, omega 1 3, omega_0 1 3, x 1 3",
     "energy of a driven oscillator"),
    ("I.25.13", "Volt", "q/C", "q 1 5, C 1 5", "voltage across a capacitor"),
    ("I.26.2", "theta1", "asin(n*sin(theta2))", "n 0 1, theta2 1 5", "Snell's law"),
    ("I.27.6", "foc", "1/(1/d1 + n/d2)", "d1 1 5, d2 1 5, n 1 5", "focal distance of a lens"),
    ("I.29.4", "k", "omega/c", "omega 1 10, c 1 10", "wave number"),
    ("I.29.16", "x", "sqrt(x1**2 + x2**2 - 2*x1*x2*cos(theta1 - theta2))",
     "x1 1 5, x2 1 5, theta1 1 5, theta2 1 5", "law of cosines for two waves"),
    ("I.30.3", "Int", "Int_0*sin(n*theta/2)**2/sin(theta/2)**2", "Int_0 1 5, theta 1 5, n 1 5",
     "intensity behind n slits"),
    ("I.30.5", "theta", "asin(lambd/(n*d))", "lambd 1 2, d 2 5, n 1 5",
     "diffraction grating angle"),
    ("I.32.5", "Pwr", "q**2*a**2/(6*pi*epsilon*c**3)", "q 1 5, a 1 5, epsilon 1 5, c 1 5",
     "Larmor radiated power"),
    ("I.32.17", "Pwr",
     "(epsilon*c*Ef**2/2)*(8*pi*r**2/3)*omega**4/(omega**2 - omega_0**2)**2",
     "epsilon 1 2, c 1 2, Ef 1 2, r 1 2, omega 1 2, omega_0 3 5",
     "power scattered by a bound electron"),
    ("I.34.8", "omega", "q*v*B/p", "q 1 5, v 1 5, B 1 5, p 1 5", "cyclotron frequency"),
    ("I.34.1", "omega", "omega_0/(1 - v/c)", "c 3 10, v 1 2, omega_0 1 5",
     "Doppler shift of a moving source"),
    ("I.34.14", "omega", "omega_0*(1 + v/c)/sqrt(1 - v**2/c**2)", "c 3 10, v 1 2, omega_0 1 5",
     "relativistic Doppler shift"),
    ("I.34.27", "E_n", "h*omega/(2*pi)", "omega 1 5, h 1 5", "photon energy"),
    ("I.37.4", "Int", "I1 + I2 + 2*sqrt(I1*I2)*cos(delta)", "I1 1 5, I2 1 5, delta 1 5",
     "interference of two sources"),
    ("I.38.12", "r", "epsilon*h**2/(pi*m*q**2)", "m 1 5, q 1 5, h 1 5, epsilon 1 5",
     "Bohr radius"),
    ("I.39.1", "E_n", "3*pr*V/2", "pr 1 5, V 1 5", "internal energy of a monatomic gas"),
    ("I.39.11", "E_n", "pr*V/(gamma - 1)", "gamma 2 5, pr 1 5, V 1 5",
     "internal energy with adiabatic index"),
    ("I.39.22", "pr", "n*kb*T/V", "n 1 5, T 1 5, V 1 5, kb 1 5", "ideal gas law"),
    ("I.40.1", "n", "n_0*exp(-m*g*x/(kb*T))", "n_0 1 5, m 1 5, x 1 5, T 1 5, g 1 5, kb 1 5",
     "barometric (Boltzmann) density"),
    ("I.41.16", "L_rad", "h*omega**3/(2*pi**3*c**2*(exp(h*omega/(2*pi*kb*T)) - 1))",
     "omega 1 5, T 1 5, h 1 5, kb 1 5, c 1 5", "Planck's radiation law"),
    ("I.43.16", "v", "mu_drift*q*Volt/d", "mu_drift 1 5, q 1 5, Volt 1 5, d 1 5",
     "drift velocity"),
    ("I.43.31", "D", "mob*kb*T", "mob 1 5, T 1 5, kb 1 5", "Einstein diffusion relation"),
    ("I.43.43", "kappa", "kb*v/((gamma - 1)*A)", "gamma 2 5, kb 1 5, A 1 5, v 1 5",
     "thermal conductivity of a gas"),
    ("I.44.4", "E_n", "n*kb*T*log(V2/V1)", "n 1 5, kb 1 5, T 1 5, V1 1 5, V2 1 5",
     "isothermal expansion work"),
    ("I.47.23", "c", "sqrt(gamma*pr/rho)", "gamma 1 5, pr 1 5, rho 1 5", "speed of sound"),
    ("I.48.2", "E_n", "m*c**2/sqrt(1 - v**2/c**2)", "m 1 5, v 1 2, c 3 10",
     "relativistic energy"),
    ("I.50.26", "x", "x1*(cos(omega*t) + alpha*cos(omega*t)**2)",
     "x1 1 3, omega 1 3, t 1 3, alpha 1 3", "anharmonic oscillator response"),
    ("II.2.42", "Pwr", "kappa*(T2 - T1)*A/d", "kappa 1 5, T1 1 5, T2 1 5, A 1 5, d 1 5",
     "heat conduction"),
    ("II.3.24", "flux", "Pwr/(4*pi*r**2)", "Pwr 1 5, r 1 5", "flux from a point source"),
    ("II.4.23", "Volt", "q/(4*pi*epsilon*r)", "q 1 5, epsilon 1 5, r 1 5",
     "potential of a point charge"),
    ("II.6.11", "Volt", "p_d*cos(theta)/(4*pi*epsilon*r**2)",
     "epsilon 1 3, p_d 1 3, theta 1 3, r 1 3", "potential of a dipole"),
    ("II.6.15a", "Ef", "3*p_d*z*sqrt(x**2 + y**2)/(4*pi*epsilon*r**5)",
     "epsilon 1 3, p_d 1 3, r 1 3, x 1 3, y 1 3, z 1 3", "transverse field of a dipole"),
    ("II.6.15b", "Ef", "3*p_d*cos(theta)*sin(theta)/(4*pi*epsilon*r**3)",
     "epsilon 1 3, p_d 1 3, theta 1 3, r 1 3", "transverse dipole field (polar form)"),
    ("II.8.7", "E_n", "3*q**2/(20*pi*epsilon*d)", "q 1 5, epsilon 1 5, d 1 5",
     "electrostatic energy of a charged sphere"),
    ("II.8.31", "E_den", "epsilon*Ef**2/2", "epsilon 1 5, Ef 1 5",
     "energy density of an electric field"),
    ("II.10.9", "Ef", "sigma_den/(epsilon*(1 + chi))", "sigma_den 1 5, epsilon 1 5, chi 1 5",
     "field inside a dielectric"),
    ("II.11.3", "x", "q*Ef/(m*(omega_0**2 - omega**2))",
     "q 1 3, Ef 1 3, m 1 3, omega_0 3 5, omega 1 2", "amplitude of a driven oscillator"),
    ("II.11.17", "n", "n_0*(1 + p_d*Ef*cos(theta)/(kb*T))",
     "n_0 1 3, kb 1 3, T 1 3, theta 1 3, p_d 1 3, Ef 1 3", "density of oriented dipoles"),
    ("II.11.20", "Pol", "n_rho*p_d**2*Ef/(3*kb*T)", "n_rho 1 5, p_d 1 5, Ef 1 5, kb 1 5, T 1 5",
     "orientational polarisation"),
    ("II.11.27", "Pol", "n*alpha*epsilon*Ef/(1 - n*alpha/3)",
     "n 0 1, alpha 0 1, epsilon 1 2, Ef 1 2", "Clausius-Mossotti polarisation"),
    ("II.11.28", "theta", "1 + n*alpha/(1 - n*alpha/3)", "n 0 1, alpha 0 1",
     "Clausius-Mossotti dielectric constant"),
    ("II.13.17", "B", "I/(2*pi*epsilon*c**2*r)", "epsilon 1 5, c 1 5, I 1 5, r 1 5",
     "magnetic field of a straight wire"),
    ("II.13.23", "rho_c", "rho_c_0/sqrt(1 - v**2/c**2)", "rho_c_0 1 5, v 1 2, c 3 10",
     "charge density in motion"),
    ("II.13.34", "j", "rho_c_0*v/sqrt(1 - v**2/c**2)", "rho_c_0 1 5, v 1 2, c 3 10",
     "current density of moving charge"),
    ("II.15.4", "E_n", "-mom*B*cos(theta)", "mom 1 5, B 1 5, theta 1 5",
     "energy of a magnetic dipole"),
    ("II.15.5", "E_n", "-p_d*Ef*cos(theta)", "p_d 1 5, Ef 1 5, theta 1 5",
     "energy of an electric dipole"),
    ("II.21.32", "Volt", "q/(4*pi*epsilon*r*(1 - v/c))",
     "q 1 5, epsilon 1 5, r 1 5, v 1 2, c 3 10", "Lienard-Wiechert potential"),
    ("II.24.17", "k", "sqrt(omega**2/c**2 - pi**2/d**2)", "omega 4 6, c 1 2, d 2 4",
     "wave number in a waveguide"),
    ("II.27.16", "flux", "epsilon*c*Ef**2", "epsilon 1 5, c 1 5, Ef 1 5", "Poynting flux"),
    ("II.27.18", "E_den", "epsilon*Ef**2", "epsilon 1 5, Ef 1 5", "field energy density"),
    ("II.34.2a", "I", "q*v/(2*pi*r)", "q 1 5, v 1 5, r 1 5", "current of an orbiting charge"),
    ("II.34.2", "mom", "q*v*r/2", "q 1 5, v 1 5, r 1 5", "magnetic moment of an orbit"),
    ("II.34.11", "omega", "g_*q*B/(2*m)", "g_ 1 5, q 1 5, B 1 5, m 1 5", "Larmor precession"),
    ("II.34.29a", "mom", "q*h/(4*pi*m)", "q 1 5, h 1 5, m 1 5", "Bohr magneton"),
    ("II.34.29b", "E_n", "2*pi*g_*mom*B*Jz/h", "g_ 1 5, h 1 5, Jz 1 5, mom 1 5, B 1 5",
     "Zeeman energy"),
    ("II.35.18", "n", "n_0/(2*cosh(mom*B/(kb*T)))", "n_0 1 3, kb 1 3, T 1 3, mom 1 3, B 1 3",
     "population of a two-state spin"),
    ("II.35.21", "M", "n_rho*mom*tanh(mom*B/(kb*T))",
     "n_rho 1 5, mom 1 5, B 1 5, kb 1 5, T 1 5", "paramagnetic magnetisation"),
    ("II.36.38", "f", "mom*H/(kb*T) + mom*alpha*M/(epsilon*c**2*kb*T)",
     "mom 1 3, H 1 3, kb 1 3, T 1 3, alpha 1 3, epsilon 1 3, c 1 3, M 1 3",
     "mean-field magnetisation"),
    ("II.37.1", "E_n", "mom*(1 + chi)*B", "mom 1 5, B 1 5, chi 1 5",
     "energy in a magnetic material"),
    ("II.38.3", "F", "Y*A*x/d", "Y 1 5, A 1 5, d 1 5, x 1 5", "elastic force (Young modulus)"),
    ("II.38.14", "mu_S", "Y/(2*(1 + sigma))", "Y 1 5, sigma 1 5", "shear modulus"),
    ("III.4.32", "n", "1/(exp(h*omega/(2*pi*kb*T)) - 1)", "h 1 5, omega 1 5, kb 1 5, T 1 5",
     "Bose-Einstein occupation"),
    ("III.4.33", "E_n", "h*omega/(2*pi*(exp(h*omega/(2*pi*kb*T)) - 1))",
     "h 1 5, omega 1 5, kb 1 5, T 1 5", "mean energy of a quantum oscillator"),
    ("III.7.38", "omega", "4*pi*mom*B/h", "mom 1 5, B 1 5, h 1 5", "spin precession frequency"),
    ("III.8.54", "prob", "sin(2*pi*E_n*t/h)**2", "E_n 1 2, t 1 2, h 1 4",
     "two-state transition probability"),
    ("III.9.52", "prob",
     "(2*pi*p_d*Ef*t/h)*sin((omega - omega_0)*t/2)**2/((omega - omega_0)*t/2)**2",
     "p_d 1 3, Ef 1 3, t 1 3, h 1 3, omega 1 5, omega_0 1 5",
     "transition probability near resonance"),
    ("III.10.19", "E_n", "mom*sqrt(Bx**2 + By**2 + Bz**2)", "mom 1 5, Bx 1 5, By 1 5, Bz 1 5",
     "spin energy in a magnetic field"),
    ("III.12.43", "L", "n*h/(2*pi)", "n 1 5, h 1 5", "quantised angular momentum"),
    ("III.13.18", "v", "4*pi*E_n*d**2*k/h", "E_n 1 5, d 1 5, k 1 5, h 1 5",
     "electron velocity on a lattice"),
    ("III.14.14", "I", "I_0*(exp(q*Volt/(kb*T)) - 1)", "I_0 1 5, q 1 2, Volt 1 2, kb 1 2, T 1 2",
     "diode current"),
    ("III.15.12", "E_n", "2*U*(1 - cos(k*d))", "U 1 5, k 1 5, d 1 5",
     "tight-binding band energy"),
    ("III.15.14", "m", "h**2/(8*pi**2*E_n*d**2)", "h 1 5, E_n 1 5, d 1 5",
     "effective mass in a lattice"),
    ("III.15.27", "k", "2*pi*alpha/(n*d)", "alpha 1 5, n 1 5, d 1 5", "lattice wave number"),
    ("III.17.37", "f", "beta*(1 + alpha*cos(theta))", "beta 1 5, alpha 1 5, theta 1 5",
     "angular distribution"),
    ("III.19.51", "E_n", "-m*q**4/(8*epsilon**2*h**2*n**2)",
     "m 1 5, q 1 5, h 1 5, n 1 5, epsilon 1 5", "hydrogen energy levels"),
    ("III.21.20", "j", "-rho_c_0*q*A_vec/m", "rho_c_0 1 5, q 1 5, A_vec 1 5, m 1 5",
     "current density in a vector potential"),
]

#: Lecture numbering (as used by pykan and SRBench) -> ID as written in FeynmanEquations.csv.
ALIASES: dict[str, str] = {
    "I.15.10": "I.15.1",
    "I.34.10": "I.34.1",
    "I.39.10": "I.39.1",
    "I.48.20": "I.48.2",
}

# Function names as they may appear in formula strings (numpy / AI Feynman spelling included).
_FUNCTIONS: dict[str, Any] = {
    "exp": sympy.exp, "sqrt": sympy.sqrt, "log": sympy.log, "ln": sympy.log,
    "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "tanh": sympy.tanh,
    "cosh": sympy.cosh, "sinh": sympy.sinh, "asin": sympy.asin, "arcsin": sympy.asin,
    "acos": sympy.acos, "arccos": sympy.acos, "atan": sympy.atan, "arctan": sympy.atan,
    "pi": sympy.pi,
}


def parse_formula(text: str, names: list[str] | tuple[str, ...]) -> sympy.Expr:
    """Parse a formula with every variable bound to a plain Symbol (never a sympy builtin)."""
    local = dict(_FUNCTIONS)
    local.update({name: sympy.Symbol(name) for name in names})
    expr = parse_expr(text.replace("~", "-"), local_dict=local, global_dict={
        "Integer": sympy.Integer, "Float": sympy.Float, "Rational": sympy.Rational,
        "Symbol": sympy.Symbol, "Function": sympy.Function,
    })
    unknown = {str(s) for s in expr.free_symbols} - set(names)
    if unknown:
        raise ValueError(f"formula {text!r} uses undeclared names {sorted(unknown)}")
    return expr


@dataclass(frozen=True)
class FeynmanEquation:
    """One registry entry: ID, output name, formula and per-variable uniform sampling ranges."""

    id: str
    output: str
    formula_text: str
    variables: tuple[tuple[str, float, float], ...]
    title: str

    @property
    def names(self) -> list[str]:
        return [v[0] for v in self.variables]

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        return {name: (lo, hi) for name, lo, hi in self.variables}

    @property
    def symbols(self) -> list[sympy.Symbol]:
        return [sympy.Symbol(name) for name in self.names]

    @functools.cached_property
    def expr(self) -> sympy.Expr:
        """Ground-truth sympy expression over ``Symbol(name)`` for each variable name."""
        return parse_formula(self.formula_text, self.names)

    @functools.cached_property
    def func(self):
        """Vectorised numpy function f(X) for X of shape (n, n_variables)."""
        f = sympy.lambdify(self.symbols, self.expr, modules="numpy")
        return lambda X: np.broadcast_to(np.asarray(f(*np.asarray(X, float).T), float), (len(X),))

    def sample_inputs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform samples in each variable's range, shape (n, n_variables)."""
        lo = np.array([v[1] for v in self.variables])
        hi = np.array([v[2] for v in self.variables])
        return lo + (hi - lo) * rng.random((n, len(lo)))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "output": self.output, "formula": self.formula_text,
                "variables": self.names, "ranges": self.ranges, "title": self.title}


def _build_registry() -> dict[str, FeynmanEquation]:
    registry: dict[str, FeynmanEquation] = {}
    for eq_id, output, formula, var_text, title in _ENTRIES:
        variables = []
        for part in var_text.split(","):
            name, lo, hi = part.split()
            variables.append((name, float(lo), float(hi)))
        if eq_id in registry:
            raise RuntimeError(f"duplicate Feynman ID {eq_id}")
        registry[eq_id] = FeynmanEquation(eq_id, output, formula, tuple(variables), title)
    return registry


#: All 100 equations, keyed by their FeynmanEquations.csv ID, in the benchmark's order.
FEYNMAN: dict[str, FeynmanEquation] = _build_registry()


def feynman_ids() -> list[str]:
    """The 100 equation IDs in benchmark order (as in FeynmanEquations.csv's Filename column)."""
    return list(FEYNMAN)


def resolve_feynman_id(eq_id: str) -> str:
    """Map an ID or lecture alias to its registry ID, or raise DataError with the closest IDs."""
    key = str(eq_id).strip()
    for candidate in (key, key.removeprefix("feynman_").replace("_", ".")):
        if candidate in FEYNMAN:
            return candidate
        if candidate in ALIASES:
            return ALIASES[candidate]
    close = difflib.get_close_matches(key, list(FEYNMAN) + list(ALIASES), n=5, cutoff=0.6)
    hint = f"closest: {', '.join(close)}" if close else "e.g. I.6.2a, I.12.2, II.6.15a"
    raise DataError(
        f"Unknown Feynman equation ID {key!r}; use `feynman:<ID>` with one of the 100 IDs "
        f"({hint}); feynman_ids() lists them all."
    )


def feynman_equation(eq_id: str) -> FeynmanEquation:
    """The registry entry for an ID (lecture aliases such as I.15.10 accepted)."""
    return FEYNMAN[resolve_feynman_id(eq_id)]


def with_ranges(eq: FeynmanEquation, ranges: Any) -> FeynmanEquation:
    """The equation with some variables' sampling ranges replaced ({name: [low, high]})."""
    if not ranges:
        return eq
    if not isinstance(ranges, dict):
        raise DataError(f"ranges must map variable names to [low, high], e.g. "
                        f"{{'{eq.names[0]}': [-1, 1]}}; got {ranges!r}.")
    unknown = sorted(set(ranges) - set(eq.names))
    if unknown:
        raise DataError(f"ranges name {', '.join(unknown)}, which {eq.id} does not have; its "
                        f"variables are {', '.join(eq.names)}.")
    variables = []
    for name, lo, hi in eq.variables:
        if name in ranges:
            try:
                lo, hi = (float(v) for v in ranges[name])
            except (TypeError, ValueError):
                raise DataError(f"ranges[{name!r}] must be [low, high], got "
                                f"{ranges[name]!r}.") from None
            if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
                raise DataError(f"ranges[{name!r}] = [{lo}, {hi}] needs finite low < high.")
        variables.append((name, lo, hi))
    return FeynmanEquation(eq.id, eq.output, eq.formula_text, tuple(variables), eq.title)


def load_feynman(
    eq_id: str, *, seed: int = 0, n: int = 2000, noise: float = 0.0, test_size: float = 0.25,
    ranges: dict[str, Any] | None = None,
) -> Dataset:
    """Sample one Feynman equation uniformly in its ranges; X scaled exactly to [-1, 1].

    ``noise`` is SRBench's target noise (La Cava et al. 2021): the training targets get
    ``N(0, noise * sqrt(mean(y_train**2)))``; the test targets stay exact, so test scores
    measure the equation itself.

    Seeding: ``numpy.random.SeedSequence(seed)`` spawns three ``default_rng`` streams (inputs,
    noise, split), so the same seed gives identical arrays and noise never moves X or the split.
    ``ranges`` ({name: [low, high]}) replaces the registry's sampling range of those variables.
    """
    eq = with_ranges(feynman_equation(eq_id), ranges)
    n = int(n)
    if n < 8:
        raise DataError(f"n={n} is too small for a train/test split; pass n >= 8 (default 2000).")
    if not 0.0 < float(test_size) < 1.0:
        raise DataError(f"test_size={test_size} must lie strictly between 0 and 1, e.g. 0.25.")
    if not (np.isfinite(noise) and noise >= 0):
        raise DataError(f"noise={noise} must be a finite number >= 0 (a share of the targets' "
                        "RMS, e.g. 0.01).")
    # Independent streams for inputs, noise and split: adding noise leaves X and the split as is.
    rng, rng_noise, rng_split = (np.random.default_rng(s)
                                 for s in np.random.SeedSequence(seed).spawn(3))
    X = eq.sample_inputs(n, rng)
    with np.errstate(all="ignore"):
        y = eq.func(X)
        # Measure-zero singularities (e.g. omega == omega_0 in III.9.52): resample those rows.
        for _ in range(100):
            bad = ~np.isfinite(y)
            if not bad.any():
                break
            X[bad] = eq.sample_inputs(int(bad.sum()), rng)
            y = eq.func(X)
    y = y.reshape(-1, 1).copy()
    n_test = max(1, min(n - 1, int(round(n * float(test_size)))))
    perm = rng_split.permutation(n)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    if noise > 0:
        rms = float(np.sqrt(np.mean(y[train_idx] ** 2)))
        y[train_idx] += noise * rms * rng_noise.standard_normal((len(train_idx), 1))
    lo = np.array([v[1] for v in eq.variables])
    hi = np.array([v[2] for v in eq.variables])
    x_scaling = Affine((lo + hi) / 2.0, (hi - lo) / 2.0)
    y_scaling = Affine.standard(y[train_idx])
    return Dataset(
        name=f"feynman:{eq.id}",
        task="regression",
        kind="tabular",
        X_train=x_scaling.apply(X[train_idx]),
        y_train=y_scaling.apply(y[train_idx]),
        X_test=x_scaling.apply(X[test_idx]),
        y_test=y_scaling.apply(y[test_idx]),
        feature_names=eq.names,
        target_names=[eq.output],
        x_scaling=x_scaling,
        y_scaling=y_scaling,
        formula=eq.expr,
        description=f"AI Feynman {eq.id}: {eq.title}; {eq.output} = {eq.formula_text}",
        notes=[f"noise: training targets + N(0, {noise} * RMS(y)) (SRBench); test targets "
               "exact"] if noise > 0 else [],
        meta={"feynman_id": eq.id, "ranges": eq.ranges, "output": eq.output,
              "title": eq.title, "noise": float(noise)},
        exact_y={"train": y[train_idx], "test": y[test_idx]},
    )
