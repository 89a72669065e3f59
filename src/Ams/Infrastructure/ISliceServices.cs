namespace Ams.Infrastructure;

/// <summary>
/// A slice with services or options of its own registers them in its implementation of this
/// interface. The generated <c>Slices.AddServices</c> calls every implementation at start-up, so
/// a new slice wires itself without an edit to Program.cs.
/// </summary>
public interface ISliceServices
{
    static abstract void Add(IHostApplicationBuilder builder);
}
