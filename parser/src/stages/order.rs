//! Graph algorithms over stage indices: cycles, reachability from the target, and
//! the build order in waves. All iterative, linear in stages plus edges, so a
//! generated Dockerfile with thousands of stages neither overflows the stack nor
//! slows down.
//!
//! `edges[i]` lists the stages stage `i` depends on (its base and the stages it copies
//! or mounts from), without duplicates.

/// A dependency cycle as the stages along it, the first repeated at the end
/// (`[a, b, a]`), or `None`.
pub fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    for root in 0..edges.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // The current path: each stage with the index of the next edge to follow.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::OnPath;
        while let Some(top) = path.last_mut() {
            let (node, next) = *top;
            top.1 += 1;
            let Some(&dep) = edges.get(node).and_then(|e| e.get(next)) else {
                mark[node] = Mark::Done;
                path.pop();
                continue;
            };
            match mark.get(dep) {
                Some(Mark::New) => {
                    mark[dep] = Mark::OnPath;
                    path.push((dep, 0));
                }
                Some(Mark::OnPath) => {
                    let start = path.iter().position(|&(n, _)| n == dep).unwrap_or(0);
                    let mut cycle: Vec<usize> = path[start..].iter().map(|&(n, _)| n).collect();
                    cycle.push(dep);
                    return Some(cycle);
                }
                // Done, or an index outside the graph (not produced by the caller).
                _ => {}
            }
        }
    }
    None
}

/// Which stages `target` needs, itself included, directly or through others.
pub fn reachable(target: usize, edges: &[Vec<usize>]) -> Vec<bool> {
    let mut seen = vec![false; edges.len()];
    let mut todo = vec![target];
    while let Some(node) = todo.pop() {
        match seen.get_mut(node) {
            Some(s) if !*s => *s = true,
            _ => continue,
        }
        if let Some(deps) = edges.get(node) {
            todo.extend(deps.iter().copied());
        }
    }
    seen
}

/// Groups the stages marked in `include` into waves: each stage's dependencies are all
/// in earlier waves, so the stages of one wave can be built concurrently. A stage goes
/// in the earliest wave it can. Stages within a wave are in Dockerfile order. `None` if
/// the included stages hold a cycle (Kahn's algorithm cannot place them).
pub fn waves(include: &[bool], edges: &[Vec<usize>]) -> Option<Vec<Vec<usize>>> {
    let n = edges.len();
    let mut waiting_on = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut total = 0;
    for node in (0..n).filter(|&i| include.get(i) == Some(&true)) {
        total += 1;
        for &dep in edges.get(node).into_iter().flatten() {
            if include.get(dep) == Some(&true) {
                waiting_on[node] += 1;
                dependents[dep].push(node);
            }
        }
    }
    let mut current: Vec<usize> = (0..n)
        .filter(|&i| include.get(i) == Some(&true) && waiting_on[i] == 0)
        .collect();
    let mut out = Vec::new();
    let mut placed = 0;
    while !current.is_empty() {
        let mut next = Vec::new();
        for &node in &current {
            for &d in &dependents[node] {
                waiting_on[d] -= 1;
                if waiting_on[d] == 0 {
                    next.push(d);
                }
            }
        }
        placed += current.len();
        next.sort_unstable();
        out.push(std::mem::replace(&mut current, next));
    }
    (placed == total).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_with_their_path() {
        assert_eq!(find_cycle(&[vec![], vec![0], vec![0, 1]]), None);
        assert_eq!(find_cycle(&[vec![1], vec![0]]), Some(vec![0, 1, 0]));
        assert_eq!(find_cycle(&[vec![0]]), Some(vec![0, 0]), "self reference");
        assert_eq!(
            find_cycle(&[vec![], vec![2], vec![3], vec![1]]),
            Some(vec![1, 2, 3, 1])
        );
    }

    #[test]
    fn reachability_follows_every_edge() {
        let edges = [vec![], vec![0], vec![], vec![1, 2], vec![0]];
        assert_eq!(reachable(3, &edges), [true, true, true, true, false]);
        assert_eq!(reachable(4, &edges), [true, false, false, false, true]);
    }

    #[test]
    fn waves_group_independent_stages() {
        // 0 ← 1 ← 3, 0 ← 2, 3 also needs 2; 4 is not included.
        let edges = [vec![], vec![0], vec![0], vec![1, 2], vec![]];
        let include = [true, true, true, true, false];
        assert_eq!(
            waves(&include, &edges),
            Some(vec![vec![0], vec![1, 2], vec![3]])
        );
        assert_eq!(waves(&[true, true], &[vec![1], vec![0]]), None);
    }

    #[test]
    fn long_chains_do_not_recurse() {
        let n = 100_000;
        let edges: Vec<Vec<usize>> = (0..n)
            .map(|i| if i == 0 { vec![] } else { vec![i - 1] })
            .collect();
        assert_eq!(find_cycle(&edges), None);
        assert!(reachable(n - 1, &edges).iter().all(|&r| r));
        assert_eq!(waves(&vec![true; n], &edges).map(|w| w.len()), Some(n));
    }
}
